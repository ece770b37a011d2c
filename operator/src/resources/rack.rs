//! `broker.rack` from the node a broker pod runs on.
//!
//! A pod cannot read its node's labels through the downward API, so with
//! `spec.brokers.rack` each broker pod starts with an init container that asks the API
//! server for its node's `topologyKey` label (`strata-operator rack`) and leaves the value
//! in [`RACK_FILE`] for the start script. That needs `get` on nodes, a cluster-wide
//! permission: the chart ships a ClusterRole with exactly that, and the operator binds it
//! to the brokers' ServiceAccount of each cluster that asks for racks. Only the init
//! container mounts the ServiceAccount token; the broker itself has no API credentials.
//! The pod keeps starting without the operator: the lookup needs only the API server.

use k8s_openapi::api::core::v1::{
    ConfigMapProjection, Container, DownwardAPIProjection, DownwardAPIVolumeFile, KeyToPath,
    ObjectFieldSelector, ProjectedVolumeSource, ServiceAccount, ServiceAccountTokenProjection,
    Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::statefulset::{RUN_DIR, container_security_context, field_env};
use super::{ClusterNames, Component, object_meta};
use crate::crd::{KafkaClusterSpec, RackSpec};

/// Where the init container leaves the rack for the broker's start script.
pub const RACK_FILE: &str = "/run/strata/rack";
/// Where in-cluster clients look for the ServiceAccount token, CA and namespace.
const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const TOKEN_VOLUME: &str = "rack-api-token";

/// What the rack lookup of one cluster's brokers needs.
pub struct BrokerRack {
    image: String,
    topology_key: String,
}

impl BrokerRack {
    pub fn new(spec: &KafkaClusterSpec, rack: &RackSpec) -> Self {
        Self {
            image: spec.image.clone(),
            topology_key: rack.topology_key.clone(),
        }
    }

    pub fn init_container(&self) -> Container {
        Container {
            name: "rack".into(),
            image: Some(self.image.clone()),
            command: Some(vec![
                "strata-operator".into(),
                "rack".into(),
                // Expanded by the kubelet from the env below.
                "--node=$(NODE_NAME)".into(),
                format!("--topology-key={}", self.topology_key),
                format!("--out={RACK_FILE}"),
            ]),
            env: Some(vec![field_env("NODE_NAME", "spec.nodeName")]),
            security_context: Some(container_security_context()),
            volume_mounts: Some(vec![
                VolumeMount {
                    name: "run".into(),
                    mount_path: RUN_DIR.into(),
                    ..VolumeMount::default()
                },
                VolumeMount {
                    name: TOKEN_VOLUME.into(),
                    mount_path: TOKEN_DIR.into(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
            ]),
            ..Container::default()
        }
    }
}

/// The ServiceAccount token, the cluster's CA and the namespace, as the automatic mount
/// would provide them, for the init container alone.
pub fn api_token_volume() -> Volume {
    Volume {
        name: TOKEN_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        path: "token".into(),
                        expiration_seconds: Some(3600),
                        ..ServiceAccountTokenProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".into(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".into(),
                            path: "ca.crt".into(),
                            ..KeyToPath::default()
                        }]),
                        ..ConfigMapProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".into(),
                            field_ref: Some(ObjectFieldSelector {
                                field_path: "metadata.namespace".into(),
                                ..ObjectFieldSelector::default()
                            }),
                            ..DownwardAPIVolumeFile::default()
                        }]),
                    }),
                    ..VolumeProjection::default()
                },
            ]),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The brokers' ServiceAccount; it exists only for the rack lookup.
pub fn service_account(names: &ClusterNames, owner: &OwnerReference) -> ServiceAccount {
    ServiceAccount {
        metadata: object_meta(
            names,
            names.broker_service_account(),
            Component::Broker,
            owner,
        ),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// Binds `cluster_role` (the chart's "read nodes" role) to the brokers' ServiceAccount.
/// Cluster-scoped, so it cannot be owned by the namespaced KafkaCluster: the operator
/// deletes it itself when the cluster goes or stops asking for racks.
pub fn cluster_role_binding(names: &ClusterNames, cluster_role: &str) -> ClusterRoleBinding {
    let mut labels = names.labels(Component::Broker);
    labels.insert("strata.dev/namespace".to_string(), names.namespace.clone());
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(names.rack_cluster_role_binding()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: cluster_role.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: names.broker_service_account(),
            namespace: Some(names.namespace.clone()),
            ..Subject::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Desired;
    use crate::resources::statefulset::{container, pod_spec};
    use crate::resources::tests::{sample_cluster, sample_spec};

    fn racked_spec() -> KafkaClusterSpec {
        let mut spec = sample_spec();
        spec.brokers.rack = Some(RackSpec {
            topology_key: "topology.kubernetes.io/zone".into(),
        });
        spec
    }

    #[test]
    fn brokers_read_their_rack_from_the_node_before_starting() {
        let desired = Desired::build(&sample_cluster(racked_spec())).unwrap();
        let pod = pod_spec(&desired.brokers);
        let init = &pod.init_containers.as_ref().unwrap()[0];
        assert_eq!(
            init.command.as_ref().unwrap()[1..],
            [
                "rack",
                "--node=$(NODE_NAME)",
                "--topology-key=topology.kubernetes.io/zone",
                "--out=/run/strata/rack"
            ]
        );
        assert_eq!(pod.service_account_name.as_deref(), Some("events-broker"));
        // The token reaches the init container only.
        assert_eq!(pod.automount_service_account_token, Some(false));
        let mounts = |c: &Container| -> Vec<String> {
            c.volume_mounts
                .iter()
                .flatten()
                .map(|m| m.name.clone())
                .collect()
        };
        assert!(mounts(init).contains(&TOKEN_VOLUME.to_string()));
        assert!(!mounts(container(&desired.brokers)).contains(&TOKEN_VOLUME.to_string()));
        let script = &container(&desired.brokers).command.as_ref().unwrap()[2];
        assert!(
            script.contains(r#"echo "broker.rack=$(cat /run/strata/rack)" >> "$config""#),
            "{script}"
        );
        let account = desired.broker_service_account.as_ref().unwrap();
        assert_eq!(account.metadata.name.as_deref(), Some("events-broker"));
    }

    #[test]
    fn without_racks_there_is_no_lookup_and_no_account() {
        let desired = Desired::build(&sample_cluster(sample_spec())).unwrap();
        let pod = pod_spec(&desired.brokers);
        assert!(pod.init_containers.is_none());
        assert!(pod.service_account_name.is_none());
        assert!(desired.broker_service_account.is_none());
    }

    #[test]
    fn the_binding_names_the_namespace_and_the_chart_role() {
        let binding = cluster_role_binding(&ClusterNames::new("events", "prod"), "strata-broker");
        assert_eq!(
            binding.metadata.name.as_deref(),
            Some("strata-broker-prod-events")
        );
        assert_eq!(binding.role_ref.name, "strata-broker");
        let subject = &binding.subjects.as_ref().unwrap()[0];
        assert_eq!(
            (subject.name.as_str(), subject.namespace.as_deref()),
            ("events-broker", Some("prod"))
        );
        assert!(binding.metadata.owner_references.is_none());
    }
}
