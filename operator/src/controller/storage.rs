//! Growing the data volumes of a running cluster (`spec.brokers.storage.size`,
//! `spec.coordinator.storage.size`).
//!
//! A StatefulSet's `volumeClaimTemplates` cannot be changed, and its existing claims do not
//! follow the template anyway: this is the step Kubernetes leaves to a person (delete the
//! StatefulSet with `--cascade=orphan`, edit every claim, re-create it). The operator does
//! it: when the spec asks for more than the template has, it
//!
//! 1. checks that the claims' StorageClass has `allowVolumeExpansion` (else a `Degraded`
//!    condition, and the StatefulSet keeps its old size);
//! 2. raises `spec.resources.requests.storage` of every claim of the StatefulSet that is
//!    smaller (the storage provider grows the volume; most grow the filesystem online);
//! 3. deletes the StatefulSet with orphan propagation — the pods keep running, nothing
//!    restarts — and applies it again on a later pass with the new template, which adopts
//!    the pods.
//!
//! Every step is idempotent, so an operator stopped anywhere finishes on its next pass.
//! Shrinking is refused: Kubernetes cannot shrink a volume. Until every claim reports the
//! new capacity the `Reconciling` condition lists the ones still waiting.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

use super::Error;
use crate::validate::quantity_value;

/// How the claim template of the running StatefulSet compares with the desired one.
#[derive(Debug, Clone, PartialEq)]
pub enum SizeChange {
    Same,
    Grow { from: String, to: String },
    Shrink { from: String, to: String },
}

/// The size in a StatefulSet's first claim template.
pub fn template_size(sts: &StatefulSet) -> Option<String> {
    let claim = sts
        .spec
        .as_ref()?
        .volume_claim_templates
        .as_ref()?
        .first()?;
    claim_request(claim)
}

fn claim_request(claim: &PersistentVolumeClaim) -> Option<String> {
    claim
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

fn claim_capacity(claim: &PersistentVolumeClaim) -> Option<String> {
    claim
        .status
        .as_ref()?
        .capacity
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

/// Pure: compares the running and the desired template sizes as quantities (`1024Mi` is
/// `1Gi`).
pub fn compare(running: &StatefulSet, desired: &StatefulSet) -> SizeChange {
    let (Some(from), Some(to)) = (template_size(running), template_size(desired)) else {
        return SizeChange::Same;
    };
    match (quantity_value(&from), quantity_value(&to)) {
        (Some(a), Some(b)) if b > a => SizeChange::Grow { from, to },
        (Some(a), Some(b)) if b < a => SizeChange::Shrink { from, to },
        _ => SizeChange::Same,
    }
}

/// Puts the running size back into the desired StatefulSet, so applying it changes nothing
/// the API server would refuse.
pub fn keep_size(desired: &mut StatefulSet, size: &str) {
    let claims = desired
        .spec
        .as_mut()
        .and_then(|s| s.volume_claim_templates.as_mut());
    for claim in claims.into_iter().flatten() {
        if let Some(requests) = claim
            .spec
            .as_mut()
            .and_then(|s| s.resources.as_mut())
            .and_then(|r| r.requests.as_mut())
        {
            requests.insert(
                "storage".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity(size.to_string()),
            );
        }
    }
}

/// The claims a StatefulSet made (`<template>-<statefulset>-<ordinal>`).
async fn claims_of(
    client: &kube::Client,
    namespace: &str,
    sts: &StatefulSet,
    selector: &str,
) -> Result<Vec<PersistentVolumeClaim>, Error> {
    let name = sts.metadata.name.clone().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let listed = api.list(&ListParams::default().labels(selector)).await?;
    let prefix = format!("data-{name}-");
    Ok(listed
        .items
        .into_iter()
        .filter(|c| {
            c.metadata.name.as_deref().is_some_and(|n| {
                n.strip_prefix(&prefix)
                    .is_some_and(|o| o.parse::<u32>().is_ok())
            })
        })
        .collect())
}

/// Why a grow cannot happen, for the `Degraded` condition; `None` when it may.
async fn refusal(
    client: &kube::Client,
    claims: &[PersistentVolumeClaim],
) -> Result<Option<String>, Error> {
    let classes: Api<StorageClass> = Api::all(client.clone());
    for claim in claims {
        let Some(class) = claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone())
        else {
            continue;
        };
        let allowed = match classes.get_opt(&class).await {
            Ok(found) => found
                .and_then(|c| c.allow_volume_expansion)
                .unwrap_or(false),
            // A namespaced install cannot read cluster-scoped StorageClasses: try, and let
            // the API server's admission say no if it must.
            Err(kube::Error::Api(s)) if s.code == 403 => true,
            Err(e) => return Err(e.into()),
        };
        if !allowed {
            return Ok(Some(format!(
                "StorageClass {class} (claim {}) does not allow volume expansion",
                claim.metadata.name.as_deref().unwrap_or_default()
            )));
        }
    }
    Ok(None)
}

/// What [`grow`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grown {
    /// The claims ask for the new size and the StatefulSet was deleted (orphaning its
    /// pods); apply it again once it is gone.
    Recreating { claims: usize },
    /// Cannot grow: the message says why.
    Refused(String),
}

/// Steps 1–3 of the module documentation for one StatefulSet.
pub async fn grow(
    client: &kube::Client,
    namespace: &str,
    running: &StatefulSet,
    selector: &str,
    to: &str,
) -> Result<Grown, Error> {
    let claims = claims_of(client, namespace, running, selector).await?;
    if let Some(why) = refusal(client, &claims).await? {
        return Ok(Grown::Refused(why));
    }
    let want = quantity_value(to);
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    for claim in &claims {
        let current = claim_request(claim).and_then(|q| quantity_value(&q));
        if current.is_some() && current < want {
            let name = claim.metadata.name.clone().unwrap_or_default();
            let patched = api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": to}}}})),
                )
                .await;
            match patched {
                Ok(_) => {}
                // Admission refuses claims that cannot grow (PersistentVolumeClaimResize).
                Err(kube::Error::Api(s)) if s.code == 403 || s.code == 422 => {
                    return Ok(Grown::Refused(format!("claim {name}: {}", s.message)));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let name = running.metadata.name.clone().unwrap_or_default();
    super::delete_if_present(&sts, &name, &DeleteParams::orphan()).await?;
    Ok(Grown::Recreating {
        claims: claims.len(),
    })
}

/// Claims whose capacity is still below what they request, e.g. `data-x-broker-0 (10Gi of
/// 20Gi)`; a filesystem waiting for its pod's restart says so.
pub async fn still_growing(
    client: &kube::Client,
    namespace: &str,
    sts: &StatefulSet,
    selector: &str,
) -> Result<Vec<String>, Error> {
    let mut waiting = Vec::new();
    for claim in claims_of(client, namespace, sts, selector).await? {
        let (Some(request), Some(capacity)) = (claim_request(&claim), claim_capacity(&claim))
        else {
            continue;
        };
        if quantity_value(&capacity) < quantity_value(&request) {
            let pending = claim
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "FileSystemResizePending"));
            let name = claim.metadata.name.unwrap_or_default();
            waiting.push(if pending {
                format!(
                    "{name} ({capacity} of {request}; its filesystem grows when the pod restarts)"
                )
            } else {
                format!("{name} ({capacity} of {request})")
            });
        }
    }
    Ok(waiting)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Desired;
    use crate::resources::tests::{sample_cluster, sample_spec};

    fn brokers_with(size: &str) -> StatefulSet {
        let mut spec = sample_spec();
        spec.brokers.storage.size = size.into();
        Desired::build(&sample_cluster(spec)).unwrap().brokers
    }

    #[test]
    fn sizes_compare_as_quantities() {
        assert_eq!(
            compare(&brokers_with("10Gi"), &brokers_with("10Gi")),
            SizeChange::Same
        );
        assert_eq!(
            compare(&brokers_with("1Gi"), &brokers_with("1024Mi")),
            SizeChange::Same
        );
        assert_eq!(
            compare(&brokers_with("10Gi"), &brokers_with("20Gi")),
            SizeChange::Grow {
                from: "10Gi".into(),
                to: "20Gi".into()
            }
        );
        assert_eq!(
            compare(&brokers_with("10Gi"), &brokers_with("5G")),
            SizeChange::Shrink {
                from: "10Gi".into(),
                to: "5G".into()
            }
        );
    }

    #[test]
    fn keep_size_restores_the_running_template() {
        let mut desired = brokers_with("20Gi");
        keep_size(&mut desired, "10Gi");
        assert_eq!(template_size(&desired).as_deref(), Some("10Gi"));
        assert_eq!(compare(&brokers_with("10Gi"), &desired), SizeChange::Same);
    }
}
