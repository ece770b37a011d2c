//! The broker's authorizer: Kafka's ZooKeeper-mode `AclAuthorizer`, on when
//! `authorizer.class.name` is set. It holds every ACL of the cluster in memory, read from
//! the metadata store at start and again whenever a broker announces a change (or the
//! store reconnects and may have missed one); decisions are [`AclSet::authorize`]'s.
//! Denials are logged as Kafka's authorizer logger prints them, and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tracing::{info, warn};

use super::acl::{AclSet, AuthorizerConfig, Operation, Requester, ResourceType};
use crate::config::KafkaConfig;
use crate::metadata::MetadataStore;

/// The authorizer class names Kafka users configure; any of them turns ACLs on.
pub const CLASS_NAMES: &[&str] = &[
    "kafka.security.authorizer.AclAuthorizer",
    "kafka.security.auth.SimpleAclAuthorizer",
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
];

pub struct Authorizer {
    config: AuthorizerConfig,
    acls: RwLock<Arc<AclSet>>,
    /// Requests (or parts of one) refused.
    pub denied: AtomicU64,
}

impl Authorizer {
    /// `None` without `authorizer.class.name`: every principal may do everything, as in
    /// Kafka without an authorizer.
    pub fn from_config(config: &KafkaConfig) -> Result<Option<Authorizer>, String> {
        let key = |k: &str| config.explicit.get(k).map(|v| v.trim());
        let Some(class) = key("authorizer.class.name") else {
            return Ok(None);
        };
        if class.is_empty() {
            return Ok(None);
        }
        if !CLASS_NAMES.contains(&class) {
            return Err(format!(
                "authorizer.class.name: {class} is not known; use kafka.security.authorizer.AclAuthorizer"
            ));
        }
        let allow_if_no_acls = match key("allow.everyone.if.no.acl.found") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!(
                    "allow.everyone.if.no.acl.found: '{other}' is not true or false"
                ));
            }
        };
        Ok(Some(Authorizer {
            config: AuthorizerConfig {
                super_users: AuthorizerConfig::parse_super_users(
                    key("super.users").unwrap_or_default(),
                ),
                allow_if_no_acls,
            },
            acls: RwLock::new(Arc::new(AclSet::default())),
            denied: AtomicU64::new(0),
        }))
    }

    /// Reads every ACL from the store.
    pub async fn reload(&self, store: &dyn MetadataStore) {
        match store.acls().await {
            Ok(set) => {
                let count: usize = set.acls.values().map(|e| e.len()).sum();
                *self.acls.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
                info!(acls = count, "ACLs loaded");
            }
            Err(e) => warn!(error = %e, "cannot read ACLs; keeping those loaded before"),
        }
    }

    pub fn acls(&self) -> Arc<AclSet> {
        self.acls.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn authorize(
        &self,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let allowed = self.allows_quietly(who, operation, resource_type, name);
        if !allowed {
            self.deny(who, operation, resource_type, name);
        }
        allowed
    }

    /// Allowed on at least one resource of the type (IdempotentWrite by WRITE on any
    /// topic, as Kafka 3 decides it). Not logged as a denial: the caller may try another
    /// resource first.
    pub fn authorize_any(
        &self,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        self.acls()
            .authorize_any(&self.config, who, operation, resource_type)
    }

    /// Whether a check may be made without logging a denial (Metadata listing topics a
    /// principal may not see is not an attempt to use them).
    pub fn allows_quietly(
        &self,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.acls()
            .authorize(&self.config, who, operation, resource_type, name)
    }

    fn deny(
        &self,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) {
        self.denied.fetch_add(1, Ordering::Relaxed);
        info!(
            "Principal = {} is Denied Operation = {} from host = {} on resource = {}:{}",
            who.principal,
            operation.name(),
            who.host,
            resource_type.name(),
            name
        );
    }
}
