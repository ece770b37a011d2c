//! `KafkaCluster`: a coordinator ensemble and a set of brokers that use it.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// A Strata cluster: `spec.coordinator` is the ZooKeeper-compatible ensemble, `spec.brokers`
/// the Kafka brokers registered in it. `kubectl scale kafkacluster/x --replicas=N` moves
/// `spec.brokers.replicas` through the scale subresource.
// Every `printcolumn(...)` names a `type_`; the lint mistakes that for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "strata.dev",
    version = "v1alpha1",
    kind = "KafkaCluster",
    plural = "kafkaclusters",
    shortname = "kc",
    namespaced,
    status = "KafkaClusterStatus",
    scale(
        spec_replicas_path = ".spec.brokers.replicas",
        status_replicas_path = ".status.brokers.ready",
        label_selector_path = ".status.brokers.selector"
    ),
    printcolumn(
        name = "Brokers",
        type_ = "integer",
        json_path = ".spec.brokers.replicas"
    ),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.brokers.ready"),
    printcolumn(
        name = "Coordinators",
        type_ = "integer",
        json_path = ".spec.coordinator.replicas"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterSpec {
    /// The one Strata image; every role runs from it with a different command.
    pub image: String,
    pub brokers: BrokersSpec,
    pub coordinator: CoordinatorSpec,
    #[serde(default)]
    pub listeners: ListenersSpec,
    #[serde(default)]
    pub metrics: MetricsSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokersSpec {
    /// Number of brokers; `broker.id` is the pod ordinal.
    #[schemars(range(min = 1))]
    pub replicas: i32,
    pub storage: StorageSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Broker properties written into `server.properties` as given. Keys the operator
    /// derives itself (`broker.id`, `listeners`, ...) are refused by validation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Spread brokers evenly over the values of a node label (a topology spread
    /// constraint), so losing one zone loses at most its share of brokers, and make each
    /// broker's `broker.rack` its node's value of that label, so replicas of a partition
    /// are placed in different zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<RackSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RackSpec {
    /// Node label that names the failure domain, e.g. `topology.kubernetes.io/zone`.
    #[schemars(length(min = 1))]
    pub topology_key: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.replicas % 2 == 1",
    "message": "coordinator replicas must be odd so a quorum survives the loss of a minority"
}]))]
pub struct CoordinatorSpec {
    /// Voting members of the ensemble; odd, so a majority is well defined.
    #[schemars(range(min = 1))]
    pub replicas: i32,
    /// Non-voting members (`server.N=...:observer`) that serve reads without slowing writes.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub observers: i32,
    pub storage: StorageSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// PersistentVolumeClaim size, a Kubernetes quantity such as `10Gi`.
    #[schemars(length(min = 1))]
    pub size: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// Container requests and limits as Kubernetes quantities (`cpu: 500m`, `memory: 2Gi`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenersSpec {
    #[serde(default)]
    pub plain: PlainListener,
    /// A TLS listener next to the plain one; its key material comes from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsListener>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlainListener {
    #[serde(default = "default_plain_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

impl Default for PlainListener {
    fn default() -> Self {
        Self {
            port: default_plain_port(),
        }
    }
}

fn default_plain_port() -> i32 {
    9092
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsListener {
    #[serde(default = "default_tls_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Secret with `tls.crt` and `tls.key` (a `kubernetes.io/tls` Secret), mounted into
    /// every broker.
    #[schemars(length(min = 1))]
    pub secret_name: String,
}

fn default_tls_port() -> i32 {
    9093
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Serve coordinator metrics (port 7000) and, when the Prometheus Operator's CRD is
    /// installed, create a ServiceMonitor for brokers and coordinators. Brokers serve
    /// metrics on 9404 either way: their readiness probe reads them.
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers: Option<BrokerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<CoordinatorStatus>,
    /// `host:port,...` for clients inside the cluster (the bootstrap Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatus {
    pub desired: i32,
    pub ready: i32,
    /// Label selector of the broker pods, for the scale subresource (and so an HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoordinatorStatus {
    pub desired: i32,
    pub ready: i32,
    /// Pod name of the current ensemble leader, when one answered `srvr` as leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
}
