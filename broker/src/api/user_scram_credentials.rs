//! AlterUserScramCredentials (v0) and DescribeUserScramCredentials (v0): SCRAM users in
//! `/config/users/<user>` under the mechanism's name, in Kafka's stored form, so
//! `kafka-configs --alter --add-config 'SCRAM-SHA-512=[password=...]' --entity-type users`
//! works and a credential written by either system is read by both.
//!
//! The client salts the password; the broker keeps only the derived keys. Checks and
//! messages follow Kafka's `ZkAdminManager`: one result per user, and a user whose
//! request has any bad entry changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::security::USERS;
use crate::security::acl::Operation;
use crate::security::scram::{MAX_ITERATIONS, MIN_ITERATIONS, ScramCredential, ScramMechanism};

type Failure = (ResponseError, String);

fn fail(error: ResponseError, message: &str) -> Failure {
    (error, message.to_string())
}

pub async fn alter(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    if !ctx.cluster_authorized(broker, Operation::Alter) {
        let users: BTreeSet<&str> = request
            .deletions
            .iter()
            .map(|d| d.name.as_str())
            .chain(request.upsertions.iter().map(|u| u.name.as_str()))
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(
            users
                .into_iter()
                .map(|u| {
                    AlterUserScramCredentialsResult::default()
                        .with_user(str_bytes(u))
                        .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                })
                .collect(),
        );
    }
    // user → (its changes, or why none is made)
    let mut users: BTreeMap<String, Result<Vec<Change>, Failure>> = BTreeMap::new();
    let mut seen: BTreeSet<(String, i8)> = BTreeSet::new();
    let mut add = |user: &str, mechanism: i8, change: Result<Change, Failure>| {
        let entry = users.entry(user.to_string()).or_insert(Ok(Vec::new()));
        let change = if seen.insert((user.to_string(), mechanism)) {
            change
        } else {
            Err(fail(
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request",
            ))
        };
        match (entry.as_mut(), change) {
            (Ok(changes), Ok(c)) => changes.push(c),
            (Ok(_), Err(e)) => *entry = Err(e),
            (Err(_), _) => {}
        }
    };
    for d in &request.deletions {
        add(
            d.name.as_str(),
            d.mechanism,
            check_user(d.name.as_str())
                .and_then(|()| mechanism(d.mechanism))
                .map(Change::Delete),
        );
    }
    for u in &request.upsertions {
        let change = check_user(u.name.as_str())
            .and_then(|()| mechanism(u.mechanism))
            .and_then(|m| {
                if u.iterations < MIN_ITERATIONS {
                    return Err(fail(
                        ResponseError::UnacceptableCredential,
                        "Too few iterations",
                    ));
                }
                if u.iterations > MAX_ITERATIONS {
                    return Err(fail(
                        ResponseError::UnacceptableCredential,
                        "Too many iterations",
                    ));
                }
                if u.salt.is_empty() || u.salted_password.is_empty() {
                    return Err(fail(
                        ResponseError::UnacceptableCredential,
                        "Salt and salted password must not be empty",
                    ));
                }
                Ok(Change::Upsert(
                    m,
                    ScramCredential::from_salted_password(
                        m,
                        u.salt.to_vec(),
                        &u.salted_password,
                        u.iterations,
                    ),
                ))
            });
        add(u.name.as_str(), u.mechanism, change);
    }
    let mut results = Vec::new();
    for (user, changes) in users {
        let outcome = match changes {
            Ok(changes) => apply(broker, &user, changes).await,
            Err(e) => Err(e),
        };
        let (code, message) = match outcome {
            Ok(()) => (0, None),
            Err((e, m)) => (e.code(), Some(str_bytes(m))),
        };
        results.push(
            AlterUserScramCredentialsResult::default()
                .with_user(str_bytes(user))
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

enum Change {
    Delete(ScramMechanism),
    Upsert(ScramMechanism, ScramCredential),
}

fn check_user(user: &str) -> Result<(), Failure> {
    if user.is_empty() {
        return Err(fail(
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        ));
    }
    Ok(())
}

fn mechanism(id: i8) -> Result<ScramMechanism, Failure> {
    ScramMechanism::from_id(id).ok_or_else(|| {
        fail(
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism",
        )
    })
}

async fn apply(broker: &Broker, user: &str, changes: Vec<Change>) -> Result<(), Failure> {
    let store_error =
        |e: crate::metadata::MetadataError| (ResponseError::UnknownServerError, e.to_string());
    let mut configs = broker
        .store
        .entity_configs(USERS.into(), user.into())
        .await
        .map_err(store_error)?;
    for change in changes {
        match change {
            Change::Delete(m) => {
                if configs.remove(m.name()).is_none() {
                    return Err(fail(
                        ResponseError::ResourceNotFound,
                        "Attempt to delete a user credential that does not exist",
                    ));
                }
            }
            Change::Upsert(m, credential) => {
                configs.insert(m.name().to_string(), credential.to_config_value());
            }
        }
    }
    broker
        .store
        .set_entity_configs(USERS.into(), user.into(), configs)
        .await
        .map_err(store_error)
}

pub async fn describe(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let response = DescribeUserScramCredentialsResponse::default();
    if !ctx.cluster_authorized(broker, Operation::Describe) {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let (names, all) = match request.users {
        Some(users) if !users.is_empty() => (
            users.iter().map(|u| u.name.to_string()).collect::<Vec<_>>(),
            false,
        ),
        _ => match broker.store.entity_names(USERS.into()).await {
            Ok(names) => (names, true),
            Err(e) => {
                return response
                    .with_error_code(ResponseError::UnknownServerError.code())
                    .with_error_message(Some(str_bytes(e.to_string())));
            }
        },
    };
    let mut results = Vec::new();
    let mut seen = BTreeSet::new();
    let duplicates: BTreeSet<&String> = names.iter().filter(|n| !seen.insert(*n)).collect();
    let mut reported = BTreeSet::new();
    for name in &names {
        if !reported.insert(name) {
            continue;
        }
        let outcome = if duplicates.contains(name) {
            Err(fail(
                ResponseError::DuplicateResource,
                "Cannot describe SCRAM credentials for the same user twice in a single request",
            ))
        } else {
            credential_infos(broker, name).await
        };
        let result =
            DescribeUserScramCredentialsResult::default().with_user(str_bytes(name.clone()));
        results.push(match outcome {
            Ok(infos) => result.with_credential_infos(infos),
            // Listing everyone: users with only other configs (quotas) are not SCRAM users.
            Err((ResponseError::ResourceNotFound, _)) if all => continue,
            Err((e, message)) => result
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(message))),
        });
    }
    response.with_results(results)
}

/// A user's SCRAM mechanisms and iteration counts.
async fn credential_infos(broker: &Broker, user: &str) -> Result<Vec<CredentialInfo>, Failure> {
    let configs = broker
        .store
        .entity_configs(USERS.into(), user.into())
        .await
        .map_err(|e| (ResponseError::UnknownServerError, e.to_string()))?;
    let infos: Vec<CredentialInfo> = ScramMechanism::ALL
        .into_iter()
        .filter_map(|m| {
            let c = ScramCredential::from_config_value(configs.get(m.name())?).ok()?;
            Some(
                CredentialInfo::default()
                    .with_mechanism(m.id())
                    .with_iterations(c.iterations),
            )
        })
        .collect();
    if infos.is_empty() {
        return Err(fail(
            ResponseError::ResourceNotFound,
            "Attempt to describe a user credential that does not exist",
        ));
    }
    Ok(infos)
}
