//! The objects a `KafkaCluster` becomes, built as plain values from the spec alone.
//!
//! Nothing here talks to the API server, so every builder is unit-tested by comparing the
//! objects it returns. The controller applies them in [`Desired::apply_order`].

mod broker;
mod coordinator;
mod rack;
mod service_monitor;
mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, ResourceRequirements, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;

use crate::crd::{KafkaCluster, Resources};

pub use broker::{BROKER_METRICS_PORT, broker_properties};
pub use coordinator::{COORDINATOR_CLIENT_PORT, COORDINATOR_METRICS_PORT, server_line, zoo_cfg};
pub use rack::cluster_role_binding as rack_cluster_role_binding;
pub use service_monitor::service_monitor;

/// Ports a broker listener may not take because the broker already serves something there.
pub const RESERVED_BROKER_PORTS: &[i32] = &[BROKER_METRICS_PORT];

/// The one field manager for every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "strata-operator";

/// The two roles in a cluster; each gets a StatefulSet, a headless Service, a ConfigMap
/// and a PodDisruptionBudget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Coordinator,
    Broker,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Coordinator => "coordinator",
            Component::Broker => "broker",
        }
    }
}

/// Names of everything derived from one cluster, in one place so builders, the controller
/// and the tests agree.
#[derive(Clone, Debug)]
pub struct ClusterNames {
    pub cluster: String,
    pub namespace: String,
}

impl ClusterNames {
    pub fn new(cluster: &str, namespace: &str) -> Self {
        Self {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// StatefulSet, headless Service, PDB and pod name prefix of a component.
    pub fn component(&self, component: Component) -> String {
        format!("{}-{}", self.cluster, component.as_str())
    }

    pub fn config_map(&self, component: Component) -> String {
        format!("{}-{}-config", self.cluster, component.as_str())
    }

    /// The coordinators' super user (`password`: `super:<secret>`, `digest`: what
    /// zoo.cfg's `DigestAuthenticationProvider.superDigest` takes): the operator
    /// authenticates with it to reconfigure the ensemble.
    pub fn coordinator_admin_secret(&self) -> String {
        format!("{}-coordinator-admin", self.cluster)
    }

    /// The brokers' ServiceAccount (only with racks: the rack lookup calls the API).
    pub fn broker_service_account(&self) -> String {
        format!("{}-broker", self.cluster)
    }

    /// The ClusterRoleBinding that lets the brokers' rack lookup read nodes. Cluster-wide,
    /// so the namespace is part of the name.
    pub fn rack_cluster_role_binding(&self) -> String {
        format!("strata-broker-{}-{}", self.namespace, self.cluster)
    }

    /// The ClusterIP Service clients bootstrap from.
    pub fn bootstrap(&self) -> String {
        format!("{}-bootstrap", self.cluster)
    }

    /// The stable DNS name of one pod behind its headless Service.
    pub fn pod_dns(&self, component: Component, ordinal: i32) -> String {
        let set = self.component(component);
        format!("{set}-{ordinal}.{set}.{}.svc", self.namespace)
    }

    pub fn bootstrap_servers(&self, port: i32) -> String {
        format!("{}.{}.svc:{port}", self.bootstrap(), self.namespace)
    }

    /// Labels on every object of a component; also the pod selector, so they never change.
    pub fn labels(&self, component: Component) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "strata".to_string()),
            (
                "app.kubernetes.io/instance".to_string(),
                self.cluster.clone(),
            ),
            (
                "app.kubernetes.io/component".to_string(),
                component.as_str().to_string(),
            ),
            (
                "app.kubernetes.io/managed-by".to_string(),
                FIELD_MANAGER.to_string(),
            ),
        ])
    }

    /// `labels` as a selector string, what the scale subresource reports.
    pub fn selector(&self, component: Component) -> String {
        self.labels(component)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Everything a cluster should consist of.
#[derive(Clone, Debug)]
pub struct Desired {
    pub config_maps: Vec<ConfigMap>,
    pub services: Vec<Service>,
    pub pod_disruption_budgets: Vec<PodDisruptionBudget>,
    /// Only with `spec.brokers.rack`: the identity of the brokers' rack lookup.
    pub broker_service_account: Option<ServiceAccount>,
    /// Only when `spec.metrics.enabled`; applied only if the ServiceMonitor CRD exists.
    pub service_monitor: Option<serde_json::Value>,
    pub coordinator: StatefulSet,
    pub brokers: StatefulSet,
}

/// Why desired objects could not be built: the resource lacks what the API server always
/// sets, so this only happens for objects that did not come from the API server.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("KafkaCluster has no {0}")]
    MissingMetadata(&'static str),
}

/// A KafkaCluster annotation whose value is copied into both pod templates: changing it
/// (e.g. to the current time) restarts every pod, brokers through the ISR-aware roll.
pub const RESTART_ANNOTATION: &str = "strata.dev/restart";
/// The broker pod template's digest of the TLS listener's certificate: a renewed
/// certificate is a new revision, which the ISR-aware roll puts on every broker.
pub const TLS_HASH_ANNOTATION: &str = "strata.dev/tls-hash";

/// Puts the digest of the TLS listener's certificate on the broker pod template.
pub fn annotate_tls_digest(brokers: &mut StatefulSet, digest: &str) {
    statefulset::annotate_template(brokers, TLS_HASH_ANNOTATION, digest);
}

impl Desired {
    /// Builds the whole cluster. Call only with a spec that passed validation.
    pub fn build(kc: &KafkaCluster) -> Result<Desired, BuildError> {
        let name = kc
            .metadata
            .name
            .as_deref()
            .ok_or(BuildError::MissingMetadata("name"))?;
        let namespace = kc
            .metadata
            .namespace
            .as_deref()
            .ok_or(BuildError::MissingMetadata("namespace"))?;
        let owner = kc
            .controller_owner_ref(&())
            .ok_or(BuildError::MissingMetadata("uid"))?;
        let names = ClusterNames::new(name, namespace);
        let spec = &kc.spec;
        let restart = kc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RESTART_ANNOTATION));
        let mut coordinator = coordinator::stateful_set(&names, spec, &owner);
        let mut brokers = broker::stateful_set(&names, spec, &owner);
        for sts in [&mut coordinator, &mut brokers] {
            if let Some(token) = restart {
                statefulset::annotate_template(sts, RESTART_ANNOTATION, token);
            }
        }
        // Pods restart under the operator's rolls: brokers one at a time without taking a
        // partition below min.insync.replicas, coordinators one at a time with the leader
        // last. The StatefulSet controller's own rolling update waits only for readiness
        // and takes the highest ordinal first, whoever leads.
        statefulset::set_update_strategy(&mut brokers, "OnDelete");
        statefulset::set_update_strategy(&mut coordinator, "OnDelete");
        Ok(Desired {
            config_maps: vec![
                coordinator::config_map(&names, spec, &owner),
                broker::config_map(&names, spec, &owner),
            ],
            services: vec![
                coordinator::headless_service(&names, spec, &owner),
                broker::headless_service(&names, spec, &owner),
                broker::bootstrap_service(&names, spec, &owner),
            ],
            pod_disruption_budgets: vec![
                pod_disruption_budget(&names, Component::Coordinator, &owner),
                pod_disruption_budget(&names, Component::Broker, &owner),
            ],
            broker_service_account: spec
                .brokers
                .rack
                .as_ref()
                .map(|_| rack::service_account(&names, &owner)),
            service_monitor: spec
                .metrics
                .enabled
                .then(|| service_monitor(&names, &owner)),
            coordinator,
            brokers,
        })
    }
}

/// Metadata shared by every owned object: name, namespace, labels and the controller
/// owner reference that makes the API server's garbage collector delete it with the cluster.
fn object_meta(
    names: &ClusterNames,
    name: String,
    component: Component,
    owner: &OwnerReference,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(names.namespace.clone()),
        labels: Some(names.labels(component)),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// At most one pod of a component down for voluntary disruptions (node drains): with one
/// broker or coordinator out, a replication factor 3 topic and a 3-node ensemble keep going.
fn pod_disruption_budget(
    names: &ClusterNames,
    component: Component,
    owner: &OwnerReference,
) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: object_meta(names, names.component(component), component, owner),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(names.labels(component)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}

fn resource_requirements(resources: Option<&Resources>) -> Option<ResourceRequirements> {
    let resources = resources?;
    let quantities = |m: &BTreeMap<String, String>| {
        (!m.is_empty()).then(|| {
            m.iter()
                .map(|(k, v)| (k.clone(), Quantity(v.clone())))
                .collect()
        })
    };
    Some(ResourceRequirements {
        requests: quantities(&resources.requests),
        limits: quantities(&resources.limits),
        ..ResourceRequirements::default()
    })
}

/// FNV-1a over the rendered configuration. Stored as a pod-template annotation so that a
/// config change rolls the pods; stable across Rust releases, unlike `DefaultHasher`.
pub(crate) fn config_hash(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crd::{
        BrokersSpec, CoordinatorSpec, KafkaClusterSpec, ListenersSpec, MetricsSpec, StorageSpec,
    };

    pub(crate) fn sample_spec() -> KafkaClusterSpec {
        KafkaClusterSpec {
            image: "strata:dev".into(),
            brokers: BrokersSpec {
                replicas: 3,
                storage: StorageSpec {
                    size: "10Gi".into(),
                    storage_class_name: None,
                    delete_claim: false,
                },
                resources: None,
                config: BTreeMap::from([("num.partitions".into(), "6".into())]),
                rack: None,
            },
            coordinator: CoordinatorSpec {
                replicas: 3,
                observers: 0,
                storage: StorageSpec {
                    size: "1Gi".into(),
                    storage_class_name: Some("fast".into()),
                    delete_claim: false,
                },
                resources: None,
            },
            listeners: ListenersSpec::default(),
            metrics: MetricsSpec::default(),
            rebalance: None,
        }
    }

    pub(crate) fn sample_cluster(spec: KafkaClusterSpec) -> KafkaCluster {
        let mut kc = KafkaCluster::new("events", spec);
        kc.metadata.namespace = Some("prod".into());
        kc.metadata.uid = Some("0c9a6c4e-1111-2222-3333-444455556666".into());
        kc
    }

    #[test]
    fn names_follow_the_cluster() {
        let n = ClusterNames::new("events", "prod");
        assert_eq!(n.component(Component::Broker), "events-broker");
        assert_eq!(
            n.pod_dns(Component::Broker, 2),
            "events-broker-2.events-broker.prod.svc"
        );
        assert_eq!(n.bootstrap_servers(9092), "events-bootstrap.prod.svc:9092");
        assert_eq!(
            n.selector(Component::Coordinator),
            "app.kubernetes.io/component=coordinator,app.kubernetes.io/instance=events,\
             app.kubernetes.io/managed-by=strata-operator,app.kubernetes.io/name=strata"
        );
    }

    #[test]
    fn every_object_is_owned_by_the_cluster() {
        let desired = Desired::build(&sample_cluster(sample_spec())).unwrap();
        let metas = desired
            .config_maps
            .iter()
            .map(|o| &o.metadata)
            .chain(desired.services.iter().map(|o| &o.metadata))
            .chain(desired.pod_disruption_budgets.iter().map(|o| &o.metadata))
            .chain([&desired.coordinator.metadata, &desired.brokers.metadata]);
        let mut count = 0;
        for meta in metas {
            let owners = meta.owner_references.as_ref().unwrap();
            assert_eq!(owners.len(), 1);
            assert_eq!(owners[0].kind, "KafkaCluster");
            assert_eq!(owners[0].name, "events");
            assert_eq!(owners[0].controller, Some(true));
            assert_eq!(meta.namespace.as_deref(), Some("prod"));
            count += 1;
        }
        assert_eq!(count, 9);
        assert!(desired.service_monitor.is_none());
    }

    #[test]
    fn pdbs_allow_one_pod_down() {
        let desired = Desired::build(&sample_cluster(sample_spec())).unwrap();
        for pdb in &desired.pod_disruption_budgets {
            let spec = pdb.spec.as_ref().unwrap();
            assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
            assert!(spec.min_available.is_none());
        }
    }

    #[test]
    fn building_needs_a_uid_for_the_owner_reference() {
        let mut kc = sample_cluster(sample_spec());
        kc.metadata.uid = None;
        assert!(matches!(
            Desired::build(&kc),
            Err(BuildError::MissingMetadata("uid"))
        ));
    }

    #[test]
    fn both_roll_under_the_operator_and_the_restart_annotation_reaches_both_templates() {
        let strategy = |s: &StatefulSet| {
            s.spec
                .as_ref()
                .unwrap()
                .update_strategy
                .as_ref()
                .and_then(|u| u.type_.clone())
        };
        let template_annotation = |s: &StatefulSet| {
            s.spec
                .as_ref()
                .unwrap()
                .template
                .metadata
                .as_ref()
                .unwrap()
                .annotations
                .as_ref()
                .unwrap()
                .get(RESTART_ANNOTATION)
                .cloned()
        };
        let mut kc = sample_cluster(sample_spec());
        let plain = Desired::build(&kc).unwrap();
        assert_eq!(strategy(&plain.brokers).as_deref(), Some("OnDelete"));
        assert_eq!(strategy(&plain.coordinator).as_deref(), Some("OnDelete"));
        assert_eq!(template_annotation(&plain.brokers), None);
        kc.metadata.annotations = Some(BTreeMap::from([(
            RESTART_ANNOTATION.to_string(),
            "2026-12-06T10:00:00Z".to_string(),
        )]));
        let restarted = Desired::build(&kc).unwrap();
        for sts in [&restarted.brokers, &restarted.coordinator] {
            assert_eq!(
                template_annotation(sts).as_deref(),
                Some("2026-12-06T10:00:00Z")
            );
        }
    }

    #[test]
    fn config_hash_is_stable_and_sensitive() {
        assert_eq!(config_hash(&["a", "b"]), config_hash(&["a", "b"]));
        assert_ne!(config_hash(&["a", "b"]), config_hash(&["ab"]));
        assert_eq!(config_hash(&[]), "cbf29ce484222325");
    }
}
