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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceSpec>,
}

/// How replicas move when brokers are added (rebalance) or removed (drain).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebalanceSpec {
    /// Replication throttle (KIP-73) while replicas move, in bytes per second per broker,
    /// for leaders sending and followers fetching the moving partitions; cleared when
    /// the move is done. Unset: unthrottled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub throttle_bytes_per_second: Option<i64>,
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
    /// Delete a removed broker's PersistentVolumeClaim once it is drained and its pod is
    /// gone (scale-down). Default: kept, so scaling up again finds the data.
    #[serde(default)]
    pub delete_claim: bool,
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
    /// A long operation in progress (a rebalance after scale-up, a drain before
    /// scale-down): only what cannot be derived again from the cluster, so a restarted
    /// operator resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<ClusterOperation>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub enum OperationKind {
    /// Spreading replicas and leaders onto brokers that were added.
    Rebalance,
    /// Moving every replica and leadership off brokers about to be removed.
    Drain,
    /// Restarting broker pods one at a time onto the StatefulSet's current revision,
    /// never taking a partition below `min.insync.replicas`.
    RollingRestart,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub enum OperationPhase {
    /// Waiting until every broker pod is Ready and registered.
    WaitingForBrokers,
    /// Partition reassignments submitted; waiting for them to finish.
    Reassigning,
    /// Preferred leader elections submitted.
    ElectingLeaders,
    /// A roll waits (for a restarted broker to be Ready and back in its ISRs, or for a
    /// partition to have enough in-sync replicas to lose one).
    Waiting,
    /// A roll deleted the pod `podUid` of the broker in `brokers` (or of the coordinator
    /// `member`) at `since`.
    Restarting,
    /// Cannot go on (e.g. too few brokers would remain); see the Degraded condition.
    Blocked,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOperation {
    pub kind: OperationKind,
    /// The brokers added (Rebalance) or being drained (Drain).
    pub brokers: Vec<i32>,
    pub phase: OperationPhase,
    /// Topics whose replicas this operation throttled; their throttle and the brokers'
    /// throttle rates are removed when it ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttled_topics: Vec<String>,
    /// When the operation started (RFC 3339).
    pub started: String,
    /// A roll's pod being restarted (its UID: a re-created pod has another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// When the roll deleted that pod (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// What it is doing or waiting for, for people.
    #[serde(default)]
    pub message: String,
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
    /// The version (hex, ZooKeeper's `version=` of `/zookeeper/config`) of the
    /// ensemble's active configuration: the zxid of the reconfiguration that made it, 0
    /// for the one the members started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<String>,
    /// The coordinators' rolling restart while one runs: members outside the quorum
    /// first, then observers, followers and the leader last, each back in the quorum
    /// before the next goes down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roll: Option<CoordinatorRoll>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoordinatorRoll {
    /// Restarting (a member's pod was deleted), Waiting or Blocked (see the conditions).
    pub phase: OperationPhase,
    /// When the roll started (RFC 3339).
    pub started: String,
    /// The member (`myid` − 1, the pod's ordinal) whose pod the roll deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<i32>,
    /// That pod's UID: a re-created pod has another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// When the roll deleted that pod (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// What it is doing or waiting for, for people.
    #[serde(default)]
    pub message: String,
}
