//! The coordinator ensemble's membership changes, the IO around
//! [`crate::membership::next_step`]: the super user's Secret, reading the active
//! configuration from a member (`/zookeeper/config`), and the `reconfig` itself, sent as
//! the super user to any member (it reaches the leader like any write).

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ObjectMeta, PostParams};
use strata_coordinator::client::{Client, ClientError};
use strata_coordinator::config::PeerRole;

use super::Error;
use crate::membership::{ActiveConfig, parse_active};
use crate::resources::{COORDINATOR_CLIENT_PORT, ClusterNames, Component, server_line};

/// How long one member may take to connect and answer.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(5);

/// The super user's credential (`super:<secret>`), creating the Secret on first use. The
/// Secret belongs to the cluster and goes with it; the coordinators mount its `digest`.
pub async fn admin_credential(
    client: &kube::Client,
    names: &ClusterNames,
    owner: &OwnerReference,
) -> Result<String, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &names.namespace);
    let name = names.coordinator_admin_secret();
    if let Some(secret) = api.get_opt(&name).await?
        && let Some(password) = secret.data.as_ref().and_then(|d| d.get("password"))
    {
        return Ok(String::from_utf8_lossy(&password.0).into_owned());
    }
    let credential = format!("super:{}", random_hex(24)?);
    let digest =
        strata_coordinator::acl::digest_id(&credential).expect("super:<secret> has a user");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(names.namespace.clone()),
            labels: Some(names.labels(Component::Coordinator)),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        string_data: Some(
            [
                ("password".to_string(), credential.clone()),
                ("digest".to_string(), digest),
            ]
            .into(),
        ),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(credential),
        // Another pass created it first: use that one.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let secret = api.get(&name).await?;
            Ok(secret
                .data
                .as_ref()
                .and_then(|d| d.get("password"))
                .map(|p| String::from_utf8_lossy(&p.0).into_owned())
                .unwrap_or_default())
        }
        Err(e) => Err(e.into()),
    }
}

fn random_hex(bytes: usize) -> Result<String, Error> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::Coordinator(format!("no randomness for the super user: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn member_address(names: &ClusterNames, ordinal: i32) -> String {
    format!(
        "{}:{COORDINATOR_CLIENT_PORT}",
        names.pod_dns(Component::Coordinator, ordinal)
    )
}

async fn connect(address: &str) -> Option<Client> {
    tokio::time::timeout(MEMBER_TIMEOUT, Client::connect(address, 10_000))
        .await
        .ok()?
        .ok()
}

/// The active configuration, from the first of `ordinals` that answers. Members that
/// cannot be reached (not running, an operator outside the pod network) do not.
pub async fn read_active(names: &ClusterNames, ordinals: &BTreeSet<i32>) -> Option<ActiveConfig> {
    for ordinal in ordinals {
        let Some(client) = connect(&member_address(names, *ordinal)).await else {
            continue;
        };
        let got = tokio::time::timeout(MEMBER_TIMEOUT, client.get("/zookeeper/config")).await;
        let _ = client.close().await;
        if let Ok(Ok((data, _))) = got
            && let Some(active) = parse_active(&String::from_utf8_lossy(&data))
        {
            return Some(active);
        }
    }
    None
}

/// One `reconfig` as the super user through the first member of `ordinals` that
/// connects. Returns the new active configuration, or why not.
pub async fn reconfigure(
    names: &ClusterNames,
    ordinals: &BTreeSet<i32>,
    credential: &str,
    joining: &[(i32, PeerRole)],
    leaving: &[i32],
    from_version: i64,
) -> Result<ActiveConfig, String> {
    let joining = joining
        .iter()
        .map(|(id, role)| server_line(names, *id, *role))
        .collect::<Vec<_>>()
        .join(",");
    let leaving = leaving
        .iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut last = "no coordinator could be reached".to_string();
    for ordinal in ordinals {
        let address = member_address(names, *ordinal);
        let Some(client) = connect(&address).await else {
            continue;
        };
        let call = async {
            client.add_auth("digest", credential.as_bytes()).await?;
            client
                .reconfig(
                    Some(joining.as_str()).filter(|s| !s.is_empty()),
                    Some(leaving.as_str()).filter(|s| !s.is_empty()),
                    None,
                    from_version,
                )
                .await
        };
        let result = tokio::time::timeout(Duration::from_secs(30), call).await;
        let _ = client.close().await;
        match result {
            Ok(Ok((data, _))) => {
                return parse_active(&String::from_utf8_lossy(&data))
                    .ok_or_else(|| "the new configuration is unreadable".to_string());
            }
            // The ensemble's answer (in progress, a stale version, no synced quorum)
            // holds for every member: say it, and try again on a later pass.
            Ok(Err(ClientError::Server(code))) => return Err(format!("reconfig refused: {code}")),
            Ok(Err(e)) => last = format!("{address}: {e}"),
            Err(_) => last = format!("{address}: no answer in 30 s"),
        }
    }
    Err(last)
}
