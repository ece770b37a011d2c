//! CreateAcls, DescribeAcls and DeleteAcls (v0–v3), so `kafka-acls` and the admin
//! clients manage ACLs. Without an authorizer they answer SECURITY_DISABLED, as Kafka
//! does; with one they need ALTER (create, delete) or DESCRIBE (describe) on the
//! cluster. ACLs are written through the metadata store, which announces the change to
//! every broker; this broker reloads its own copy before answering, so a client sees
//! its ACLs in force once the response arrives.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::security::acl::{
    ANY, AclEntry, AclFilter, CLUSTER_NAME, MATCH, Operation, PatternType, Permission,
    ResourcePattern, ResourceType, WILDCARD,
};

const NO_AUTHORIZER: &str = "No Authorizer is configured.";

type Failure = (ResponseError, String);

fn invalid(message: impl Into<String>) -> Failure {
    (ResponseError::InvalidRequest, message.into())
}

/// Why a request cannot touch ACLs at all: no authorizer, or not allowed `operation`
/// on the cluster.
fn refused(broker: &Broker, ctx: &RequestContext<'_>, operation: Operation) -> Option<Failure> {
    if broker.authorizer.is_none() {
        return Some((ResponseError::SecurityDisabled, NO_AUTHORIZER.into()));
    }
    (!ctx.cluster_authorized(broker, operation)).then(|| {
        (
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.".into(),
        )
    })
}

pub async fn create(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let refusal = refused(broker, ctx, Operation::Alter);
    // One write per pattern; each creation answered with its pattern's outcome.
    let mut outcomes: Vec<Result<(ResourcePattern, AclEntry), Failure>> = Vec::new();
    for c in &request.creations {
        outcomes.push(match &refusal {
            Some(f) => Err(f.clone()),
            None => creation(c),
        });
    }
    let mut by_pattern: BTreeMap<ResourcePattern, BTreeSet<AclEntry>> = BTreeMap::new();
    for (pattern, entry) in outcomes.iter().flatten() {
        by_pattern
            .entry(pattern.clone())
            .or_default()
            .insert(entry.clone());
    }
    let mut written: BTreeMap<ResourcePattern, Result<(), Failure>> = BTreeMap::new();
    for (pattern, entries) in by_pattern {
        let result = broker
            .store
            .update_acls(pattern.clone(), entries, BTreeSet::new())
            .await
            .map(|_| ())
            .map_err(|e| (ResponseError::UnknownServerError, e.to_string()));
        written.insert(pattern, result);
    }
    reload(broker).await;
    let results = outcomes
        .into_iter()
        .map(|o| {
            let outcome = o.and_then(|(pattern, _)| written[&pattern].clone());
            let (code, message) = match outcome {
                Ok(()) => (0, None),
                Err((e, m)) => (e.code(), Some(str_bytes(m))),
            };
            AclCreationResult::default()
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

fn creation(
    c: &kafka_protocol::messages::create_acls_request::AclCreation,
) -> Result<(ResourcePattern, AclEntry), Failure> {
    let resource_type = ResourceType::from_code(c.resource_type)
        .ok_or_else(|| invalid(format!("Invalid resource type {}", c.resource_type)))?;
    let pattern_type = PatternType::from_code(c.resource_pattern_type).ok_or_else(|| {
        invalid(format!(
            "Invalid pattern type {} (LITERAL or PREFIXED)",
            c.resource_pattern_type
        ))
    })?;
    let name = c.resource_name.to_string();
    if name.is_empty() {
        return Err(invalid("Resource name must not be empty"));
    }
    if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
        return Err(invalid(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        )));
    }
    if pattern_type == PatternType::Prefixed && name == WILDCARD {
        return Err(invalid("A PREFIXED pattern cannot be the wildcard '*'"));
    }
    let principal = c.principal.to_string();
    if !principal
        .split_once(':')
        .is_some_and(|(t, n)| !t.is_empty() && !n.is_empty())
    {
        return Err(invalid(format!(
            "Invalid principal '{principal}': expected Type:name, e.g. User:alice"
        )));
    }
    let operation = Operation::from_code(c.operation)
        .ok_or_else(|| invalid(format!("Invalid operation {}", c.operation)))?;
    let permission = Permission::from_code(c.permission_type)
        .ok_or_else(|| invalid(format!("Invalid permission type {}", c.permission_type)))?;
    Ok((
        ResourcePattern {
            resource_type,
            name,
            pattern_type,
        },
        AclEntry {
            principal,
            host: c.host.to_string(),
            operation,
            permission,
        },
    ))
}

/// A filter from its wire fields; `None` for a field is ANY.
fn filter(
    resource_type: i8,
    name: &Option<StrBytes>,
    pattern_type: i8,
    principal: &Option<StrBytes>,
    host: &Option<StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, Failure> {
    let resource_type = match resource_type {
        ANY => None,
        code => Some(
            ResourceType::from_code(code)
                .ok_or_else(|| invalid(format!("Invalid resource type filter {code}")))?,
        ),
    };
    let pattern_type = match pattern_type {
        ANY => None,
        MATCH => Some(None),
        code => Some(Some(PatternType::from_code(code).ok_or_else(|| {
            invalid(format!("Invalid pattern type filter {code}"))
        })?)),
    };
    let operation = match operation {
        ANY => None,
        code => Some(
            Operation::from_code(code)
                .ok_or_else(|| invalid(format!("Invalid operation filter {code}")))?,
        ),
    };
    let permission = match permission {
        ANY => None,
        code => Some(
            Permission::from_code(code)
                .ok_or_else(|| invalid(format!("Invalid permission type filter {code}")))?,
        ),
    };
    Ok(AclFilter {
        resource_type,
        name: name.as_ref().map(|n| n.to_string()),
        pattern_type,
        principal: principal.as_ref().map(|p| p.to_string()),
        host: host.as_ref().map(|h| h.to_string()),
        operation,
        permission,
    })
}

pub async fn describe(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let failed = |(e, m): Failure| {
        DescribeAclsResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(m)))
    };
    if let Some(f) = refused(broker, ctx, Operation::Describe) {
        return failed(f);
    }
    let filter = match filter(
        request.resource_type_filter,
        &request.resource_name_filter,
        request.pattern_type_filter,
        &request.principal_filter,
        &request.host_filter,
        request.operation,
        request.permission_type,
    ) {
        Ok(f) => f,
        Err(f) => return failed(f),
    };
    let acls = broker.authorizer.as_ref().expect("checked above").acls();
    let resources = acls
        .acls
        .iter()
        .filter(|(pattern, _)| filter.matches_pattern(pattern))
        .filter_map(|(pattern, entries)| {
            let matching: Vec<AclDescription> = entries
                .iter()
                .filter(|e| filter.matches_entry(e))
                .map(|e| {
                    AclDescription::default()
                        .with_principal(str_bytes(e.principal.clone()))
                        .with_host(str_bytes(e.host.clone()))
                        .with_operation(e.operation.code())
                        .with_permission_type(e.permission.code())
                })
                .collect();
            (!matching.is_empty()).then(|| {
                DescribeAclsResource::default()
                    .with_resource_type(pattern.resource_type.code())
                    .with_resource_name(str_bytes(pattern.name.clone()))
                    .with_pattern_type(pattern.pattern_type.code())
                    .with_acls(matching)
            })
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

pub async fn delete(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let refusal = refused(broker, ctx, Operation::Alter);
    let mut results = Vec::with_capacity(request.filters.len());
    for f in &request.filters {
        let parsed = match &refusal {
            Some(r) => Err(r.clone()),
            None => filter(
                f.resource_type_filter,
                &f.resource_name_filter,
                f.pattern_type_filter,
                &f.principal_filter,
                &f.host_filter,
                f.operation,
                f.permission_type,
            ),
        };
        let filter = match parsed {
            Ok(filter) => filter,
            Err((e, m)) => {
                results.push(
                    DeleteAclsFilterResult::default()
                        .with_error_code(e.code())
                        .with_error_message(Some(str_bytes(m))),
                );
                continue;
            }
        };
        // The ACLs in force when the filter is applied (earlier filters' deletions
        // included).
        let acls = match broker.store.acls().await {
            Ok(a) => a,
            Err(e) => {
                results.push(
                    DeleteAclsFilterResult::default()
                        .with_error_code(ResponseError::UnknownServerError.code())
                        .with_error_message(Some(str_bytes(e.to_string()))),
                );
                continue;
            }
        };
        let mut matching = Vec::new();
        for (pattern, entries) in &acls.acls {
            if !filter.matches_pattern(pattern) {
                continue;
            }
            let doomed: BTreeSet<AclEntry> = entries
                .iter()
                .filter(|e| filter.matches_entry(e))
                .cloned()
                .collect();
            if doomed.is_empty() {
                continue;
            }
            let outcome = broker
                .store
                .update_acls(pattern.clone(), BTreeSet::new(), doomed.clone())
                .await;
            for e in doomed {
                let mut acl = DeleteAclsMatchingAcl::default()
                    .with_resource_type(pattern.resource_type.code())
                    .with_resource_name(str_bytes(pattern.name.clone()))
                    .with_pattern_type(pattern.pattern_type.code())
                    .with_principal(str_bytes(e.principal))
                    .with_host(str_bytes(e.host))
                    .with_operation(e.operation.code())
                    .with_permission_type(e.permission.code());
                if let Err(err) = &outcome {
                    acl.error_code = ResponseError::UnknownServerError.code();
                    acl.error_message = Some(str_bytes(err.to_string()));
                }
                matching.push(acl);
            }
        }
        results.push(DeleteAclsFilterResult::default().with_matching_acls(matching));
    }
    reload(broker).await;
    DeleteAclsResponse::default().with_filter_results(results)
}

async fn reload(broker: &Broker) {
    if let Some(authorizer) = &broker.authorizer {
        authorizer.reload(broker.store.as_ref()).await;
    }
}
