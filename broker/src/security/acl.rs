//! Kafka's ACL model and `AclAuthorizer`'s decision, pure.
//!
//! An ACL says that a principal, from a host, is allowed or denied an operation on the
//! resources a pattern names: one resource (`LITERAL`, or every resource of its type
//! with the name `*`) or every resource whose name starts with a prefix (`PREFIXED`).
//! A decision, as Kafka makes it:
//!
//! 1. a super user (`super.users`) may do everything;
//! 2. a matching DENY wins over any ALLOW;
//! 3. a resource no ACL matches at all is open only with `allow.everyone.if.no.acl.found`;
//! 4. otherwise a matching ALLOW is needed; READ, WRITE, DELETE and ALTER imply
//!    DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS, ALL matches every operation.
//!
//! ACLs are kept as Kafka keeps them in ZooKeeper mode: `/kafka-acl/<Type>/<name>` for
//! literal patterns and `/kafka-acl-extended/prefixed/<Type>/<prefix>` for prefixed ones,
//! each holding `{"version":1,"acls":[{"principal":..,"permissionType":..,"operation":..,
//! "host":..}]}` ([`encode_acls`], [`decode_acls`]).

use std::collections::{BTreeMap, BTreeSet};

/// The cluster resource's only name.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A literal pattern with this name matches every resource of its type.
pub const WILDCARD: &str = "*";

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:expr, $text:expr;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant,)*];

            /// The code on the wire (Create/Describe/DeleteAcls).
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                }
            }

            pub fn from_code(code: i8) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.code() == code)
            }

            /// The name Kafka writes in ZooKeeper and prints.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn from_name(text: &str) -> Option<$name> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name().eq_ignore_ascii_case(text))
            }
        }
    };
}

wire_enum!(
    /// What an ACL is about (`ResourceType`; ANY exists only in filters).
    ResourceType {
        Topic = 2, "Topic";
        Group = 3, "Group";
        Cluster = 4, "Cluster";
        TransactionalId = 5, "TransactionalId";
        DelegationToken = 6, "DelegationToken";
        User = 7, "User";
    }
);

wire_enum!(
    /// `AclOperation`, without ANY and UNKNOWN (filters only).
    Operation {
        All = 2, "All";
        Read = 3, "Read";
        Write = 4, "Write";
        Create = 5, "Create";
        Delete = 6, "Delete";
        Alter = 7, "Alter";
        Describe = 8, "Describe";
        ClusterAction = 9, "ClusterAction";
        DescribeConfigs = 10, "DescribeConfigs";
        AlterConfigs = 11, "AlterConfigs";
        IdempotentWrite = 12, "IdempotentWrite";
        CreateTokens = 13, "CreateTokens";
        DescribeTokens = 14, "DescribeTokens";
    }
);

wire_enum!(
    /// `AclPermissionType`.
    Permission {
        Deny = 2, "Deny";
        Allow = 3, "Allow";
    }
);

wire_enum!(
    /// `PatternType` of a stored ACL.
    PatternType {
        Literal = 3, "Literal";
        Prefixed = 4, "Prefixed";
    }
);

impl ResourceType {
    /// The operations an ACL on this type can grant (Kafka's
    /// `AclEntry.supportedOperations`): what KIP-430's authorized-operations fields report.
    pub fn supported_operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
        }
    }
}

/// KIP-430's bit field of operations: bit `n` set for the operation whose code is `n`
/// (Kafka's `Utils.to32BitField`).
pub fn operations_bit_field(operations: impl IntoIterator<Item = Operation>) -> i32 {
    operations
        .into_iter()
        .fold(0, |bits, op| bits | (1i32 << op.code()))
}

/// The wire codes of the filter-only values.
pub const ANY: i8 = 1;
/// PatternType MATCH: every pattern that matches the filter's name.
pub const MATCH: i8 = 2;

/// A resource pattern: what one stored ACL list is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
}

impl ResourcePattern {
    pub fn literal(resource_type: ResourceType, name: &str) -> ResourcePattern {
        ResourcePattern {
            resource_type,
            name: name.to_string(),
            pattern_type: PatternType::Literal,
        }
    }

    /// Whether the pattern covers the resource `(resource_type, name)`.
    pub fn matches(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => self.name == name || self.name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&self.name),
            }
    }

    /// Kafka's znode for the pattern's ACLs.
    pub fn znode(&self) -> String {
        match self.pattern_type {
            PatternType::Literal => {
                format!("/kafka-acl/{}/{}", self.resource_type.name(), self.name)
            }
            PatternType::Prefixed => format!(
                "/kafka-acl-extended/prefixed/{}/{}",
                self.resource_type.name(),
                self.name
            ),
        }
    }
}

/// The pattern a znode under `/kafka-acl` or `/kafka-acl-extended/prefixed` holds.
pub fn pattern_from_znode(path: &str) -> Option<ResourcePattern> {
    let (pattern_type, rest) = if let Some(rest) = path.strip_prefix("/kafka-acl/") {
        (PatternType::Literal, rest)
    } else {
        (
            PatternType::Prefixed,
            path.strip_prefix("/kafka-acl-extended/prefixed/")?,
        )
    };
    let (resource_type, name) = rest.split_once('/')?;
    Some(ResourcePattern {
        resource_type: ResourceType::from_name(resource_type)?,
        name: name.to_string(),
        pattern_type,
    })
}

/// One access control entry of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclEntry {
    /// `User:alice`, or `User:*` for everyone.
    pub principal: String,
    /// An address, or `*` for every host.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclEntry {
    fn covers_principal(&self, principal: &str) -> bool {
        self.principal == principal || self.principal == "User:*"
    }

    fn covers_host(&self, host: &str) -> bool {
        self.host == WILDCARD || self.host == host
    }
}

/// Who asks, from where.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub principal: &'a str,
    pub host: &'a str,
}

/// The authorizer's settings.
#[derive(Debug, Clone, Default)]
pub struct AuthorizerConfig {
    /// `super.users`: `User:admin;User:broker`.
    pub super_users: BTreeSet<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acls: bool,
}

impl AuthorizerConfig {
    pub fn parse_super_users(value: &str) -> BTreeSet<String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Every ACL of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclSet {
    pub acls: BTreeMap<ResourcePattern, BTreeSet<AclEntry>>,
}

impl AclSet {
    /// Kafka's `AclAuthorizer.authorizeAction`.
    pub fn authorize(
        &self,
        config: &AuthorizerConfig,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if config.super_users.contains(who.principal) {
            return true;
        }
        let matching: Vec<&AclEntry> = self
            .acls
            .iter()
            .filter(|(pattern, _)| pattern.matches(resource_type, name))
            .flat_map(|(_, entries)| entries)
            .collect();
        if matching.is_empty() {
            return config.allow_if_no_acls;
        }
        let applies = |e: &&&AclEntry| e.covers_principal(who.principal) && e.covers_host(who.host);
        let denied = matching.iter().filter(applies).any(|e| {
            e.permission == Permission::Deny
                && (e.operation == operation || e.operation == Operation::All)
        });
        if denied {
            return false;
        }
        let implied: &[Operation] = match operation {
            Operation::Describe => &[
                Operation::Describe,
                Operation::Read,
                Operation::Write,
                Operation::Delete,
                Operation::Alter,
            ],
            Operation::DescribeConfigs => &[Operation::DescribeConfigs, Operation::AlterConfigs],
            _ => std::slice::from_ref(&operation),
        };
        matching.iter().filter(applies).any(|e| {
            e.permission == Permission::Allow
                && (e.operation == Operation::All || implied.contains(&e.operation))
        })
    }

    /// Whether `who` may do `operation` on at least one resource of the type (Kafka's
    /// `authorizeByResourceType`, e.g. WRITE on some topic for IdempotentWrite): an
    /// ALLOW for the principal that no DENY of a covering pattern cancels.
    pub fn authorize_any(
        &self,
        config: &AuthorizerConfig,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if config.super_users.contains(who.principal) {
            return true;
        }
        self.acls
            .iter()
            .filter(|(p, _)| p.resource_type == resource_type)
            .any(|(pattern, entries)| {
                entries.iter().any(|e| {
                    e.permission == Permission::Allow
                        && e.covers_principal(who.principal)
                        && e.covers_host(who.host)
                        && (e.operation == operation || e.operation == Operation::All)
                }) && self.authorize(config, who, operation, resource_type, &pattern.name)
            })
    }
}

/// A DescribeAcls / DeleteAcls filter; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub name: Option<String>,
    /// `None`: ANY. `Some(None)`: MATCH. `Some(Some(p))`: exactly p.
    pub pattern_type: Option<Option<PatternType>>,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    pub fn matches_pattern(&self, pattern: &ResourcePattern) -> bool {
        if self
            .resource_type
            .is_some_and(|t| t != pattern.resource_type)
        {
            return false;
        }
        match (&self.pattern_type, &self.name) {
            (Some(None), Some(name)) => pattern.matches(pattern.resource_type, name),
            (Some(None), None) => true,
            (Some(Some(p)), name) => {
                *p == pattern.pattern_type && name.as_ref().is_none_or(|n| *n == pattern.name)
            }
            (None, name) => name.as_ref().is_none_or(|n| *n == pattern.name),
        }
    }

    pub fn matches_entry(&self, entry: &AclEntry) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| *p == entry.principal)
            && self.host.as_ref().is_none_or(|h| *h == entry.host)
            && self.operation.is_none_or(|o| o == entry.operation)
            && self.permission.is_none_or(|p| p == entry.permission)
    }
}

/// The JSON of one pattern's znode.
pub fn encode_acls(entries: &BTreeSet<AclEntry>) -> Vec<u8> {
    let acls: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "principal": e.principal,
                "permissionType": e.permission.name(),
                "operation": e.operation.name(),
                "host": e.host,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"version": 1, "acls": acls})).expect("JSON")
}

pub fn decode_acls(bytes: &[u8]) -> Result<BTreeSet<AclEntry>, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let list = value
        .get("acls")
        .and_then(|a| a.as_array())
        .ok_or("no acls array")?;
    list.iter()
        .map(|a| {
            let field = |k: &str| {
                a.get(k)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| format!("an ACL without {k}"))
            };
            Ok(AclEntry {
                principal: field("principal")?.to_string(),
                host: field("host")?.to_string(),
                operation: Operation::from_name(field("operation")?).ok_or_else(|| {
                    format!(
                        "unknown operation {}",
                        field("operation").unwrap_or_default()
                    )
                })?,
                permission: Permission::from_name(field("permissionType")?)
                    .ok_or("unknown permission type")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_bit_fields_are_kafkas() {
        // Kafka's values: a topic open to everything has READ (3) to DESCRIBE (8) and
        // DESCRIBE_CONFIGS, ALTER_CONFIGS (10, 11); a group READ, DELETE, DESCRIBE.
        let topic =
            operations_bit_field(ResourceType::Topic.supported_operations().iter().copied());
        assert_eq!(
            topic,
            (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11)
        );
        let group =
            operations_bit_field(ResourceType::Group.supported_operations().iter().copied());
        assert_eq!(group, (1 << 3) | (1 << 6) | (1 << 8));
        let cluster =
            operations_bit_field(ResourceType::Cluster.supported_operations().iter().copied());
        assert_eq!(
            cluster,
            (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12)
        );
        assert_eq!(operations_bit_field([]), 0);
        // Every type supports something, and never ALL (a filter, not an operation).
        for t in ResourceType::ALL {
            assert!(!t.supported_operations().is_empty());
            assert!(!t.supported_operations().contains(&Operation::All));
        }
    }

    fn entry(principal: &str, op: Operation, permission: Permission) -> AclEntry {
        AclEntry {
            principal: principal.into(),
            host: WILDCARD.into(),
            operation: op,
            permission,
        }
    }

    fn set(acls: &[(ResourcePattern, AclEntry)]) -> AclSet {
        let mut s = AclSet::default();
        for (p, e) in acls {
            s.acls.entry(p.clone()).or_default().insert(e.clone());
        }
        s
    }

    const ALICE: Requester = Requester {
        principal: "User:alice",
        host: "10.0.0.1",
    };
    const BOB: Requester = Requester {
        principal: "User:bob",
        host: "10.0.0.2",
    };

    fn topic(name: &str) -> ResourcePattern {
        ResourcePattern::literal(ResourceType::Topic, name)
    }

    fn prefixed(name: &str) -> ResourcePattern {
        ResourcePattern {
            resource_type: ResourceType::Topic,
            name: name.into(),
            pattern_type: PatternType::Prefixed,
        }
    }

    #[test]
    fn no_acls_means_the_config_decides() {
        let acls = AclSet::default();
        let closed = AuthorizerConfig::default();
        let open = AuthorizerConfig {
            allow_if_no_acls: true,
            ..Default::default()
        };
        assert!(!acls.authorize(&closed, ALICE, Operation::Read, ResourceType::Topic, "t"));
        assert!(acls.authorize(&open, ALICE, Operation::Read, ResourceType::Topic, "t"));
        // With an ACL on the resource, the open default no longer applies to others.
        let acls = set(&[(
            topic("t"),
            entry("User:alice", Operation::Read, Permission::Allow),
        )]);
        assert!(!acls.authorize(&open, BOB, Operation::Read, ResourceType::Topic, "t"));
        assert!(acls.authorize(&open, BOB, Operation::Read, ResourceType::Topic, "other"));
    }

    #[test]
    fn super_users_pass_even_a_deny() {
        let acls = set(&[(
            topic("t"),
            entry("User:alice", Operation::All, Permission::Deny),
        )]);
        let config = AuthorizerConfig {
            super_users: AuthorizerConfig::parse_super_users("User:admin; User:alice"),
            ..Default::default()
        };
        assert!(acls.authorize(&config, ALICE, Operation::Write, ResourceType::Topic, "t"));
    }

    #[test]
    fn deny_wins_and_all_covers_every_operation() {
        let c = AuthorizerConfig::default();
        let acls = set(&[
            (
                topic("t"),
                entry("User:*", Operation::All, Permission::Allow),
            ),
            (
                topic("t"),
                entry("User:bob", Operation::Write, Permission::Deny),
            ),
        ]);
        assert!(acls.authorize(&c, BOB, Operation::Read, ResourceType::Topic, "t"));
        assert!(!acls.authorize(&c, BOB, Operation::Write, ResourceType::Topic, "t"));
        assert!(acls.authorize(&c, ALICE, Operation::Write, ResourceType::Topic, "t"));
        assert!(acls.authorize(&c, ALICE, Operation::AlterConfigs, ResourceType::Topic, "t"));
        let acls = set(&[(
            topic("t"),
            entry("User:bob", Operation::All, Permission::Deny),
        )]);
        assert!(!acls.authorize(&c, BOB, Operation::Describe, ResourceType::Topic, "t"));
    }

    #[test]
    fn implied_operations() {
        let c = AuthorizerConfig::default();
        for op in [
            Operation::Read,
            Operation::Write,
            Operation::Delete,
            Operation::Alter,
        ] {
            let acls = set(&[(topic("t"), entry("User:alice", op, Permission::Allow))]);
            assert!(acls.authorize(&c, ALICE, Operation::Describe, ResourceType::Topic, "t"));
            assert!(!acls.authorize(
                &c,
                ALICE,
                Operation::DescribeConfigs,
                ResourceType::Topic,
                "t"
            ));
        }
        let acls = set(&[(
            topic("t"),
            entry("User:alice", Operation::AlterConfigs, Permission::Allow),
        )]);
        assert!(acls.authorize(
            &c,
            ALICE,
            Operation::DescribeConfigs,
            ResourceType::Topic,
            "t"
        ));
        assert!(!acls.authorize(&c, ALICE, Operation::Describe, ResourceType::Topic, "t"));
        let acls = set(&[(
            topic("t"),
            entry("User:alice", Operation::Describe, Permission::Allow),
        )]);
        assert!(!acls.authorize(&c, ALICE, Operation::Read, ResourceType::Topic, "t"));
    }

    #[test]
    fn literal_wildcard_and_prefixed_patterns() {
        let c = AuthorizerConfig::default();
        let acls = set(&[
            (
                prefixed("orders-"),
                entry("User:alice", Operation::Read, Permission::Allow),
            ),
            (
                topic("*"),
                entry("User:bob", Operation::Read, Permission::Allow),
            ),
        ]);
        assert!(acls.authorize(&c, ALICE, Operation::Read, ResourceType::Topic, "orders-eu"));
        assert!(!acls.authorize(&c, ALICE, Operation::Read, ResourceType::Topic, "order"));
        assert!(acls.authorize(&c, BOB, Operation::Read, ResourceType::Topic, "anything"));
        // Patterns are per resource type.
        assert!(!acls.authorize(&c, BOB, Operation::Read, ResourceType::Group, "anything"));
    }

    #[test]
    fn hosts_narrow_an_acl() {
        let c = AuthorizerConfig::default();
        let mut e = entry("User:alice", Operation::Read, Permission::Allow);
        e.host = "10.0.0.9".into();
        let acls = set(&[(topic("t"), e)]);
        assert!(!acls.authorize(&c, ALICE, Operation::Read, ResourceType::Topic, "t"));
        let from_9 = Requester {
            host: "10.0.0.9",
            ..ALICE
        };
        assert!(acls.authorize(&c, from_9, Operation::Read, ResourceType::Topic, "t"));
    }

    #[test]
    fn any_resource_of_a_type() {
        let c = AuthorizerConfig::default();
        let acls = set(&[
            (
                topic("a"),
                entry("User:alice", Operation::Write, Permission::Allow),
            ),
            (
                topic("a"),
                entry("User:bob", Operation::Write, Permission::Allow),
            ),
            (
                topic("a"),
                entry("User:bob", Operation::Write, Permission::Deny),
            ),
        ]);
        assert!(acls.authorize_any(&c, ALICE, Operation::Write, ResourceType::Topic));
        assert!(!acls.authorize_any(&c, BOB, Operation::Write, ResourceType::Topic));
        assert!(!acls.authorize_any(&c, ALICE, Operation::Write, ResourceType::Group));
    }

    #[test]
    fn filters_as_describe_and_delete_use_them() {
        let literal = topic("orders-eu");
        let prefix = prefixed("orders-");
        let wildcard = topic("*");
        let exact = AclFilter {
            resource_type: Some(ResourceType::Topic),
            name: Some("orders-eu".into()),
            pattern_type: Some(Some(PatternType::Literal)),
            ..Default::default()
        };
        assert!(exact.matches_pattern(&literal));
        assert!(!exact.matches_pattern(&prefix));
        assert!(!exact.matches_pattern(&wildcard));
        let matching = AclFilter {
            pattern_type: Some(None),
            ..exact.clone()
        };
        assert!(matching.matches_pattern(&literal));
        assert!(matching.matches_pattern(&prefix));
        assert!(matching.matches_pattern(&wildcard));
        let any = AclFilter::default();
        assert!(
            [&literal, &prefix, &wildcard]
                .iter()
                .all(|p| any.matches_pattern(p))
        );
        let only_allow = AclFilter {
            permission: Some(Permission::Allow),
            principal: Some("User:alice".into()),
            ..Default::default()
        };
        assert!(only_allow.matches_entry(&entry("User:alice", Operation::Read, Permission::Allow)));
        assert!(!only_allow.matches_entry(&entry("User:alice", Operation::Read, Permission::Deny)));
        assert!(!only_allow.matches_entry(&entry("User:bob", Operation::Read, Permission::Allow)));
    }

    #[test]
    fn kafkas_znode_json_round_trips() {
        // As Kafka 3.9's AclAuthorizer writes /kafka-acl/Topic/orders.
        let text = br#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"},{"principal":"User:bob","permissionType":"Deny","operation":"All","host":"10.0.0.2"}]}"#;
        let entries = decode_acls(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert!(entries.contains(&entry("User:alice", Operation::Read, Permission::Allow)));
        assert_eq!(decode_acls(&encode_acls(&entries)).unwrap(), entries);
        assert!(decode_acls(br#"{"version":1,"acls":[{"principal":"User:a"}]}"#).is_err());
        assert_eq!(topic("orders").znode(), "/kafka-acl/Topic/orders");
        assert_eq!(
            prefixed("o-").znode(),
            "/kafka-acl-extended/prefixed/Topic/o-"
        );
        assert_eq!(Operation::from_code(8), Some(Operation::Describe));
        assert_eq!(ResourceType::from_name("topic"), Some(ResourceType::Topic));
    }
}
