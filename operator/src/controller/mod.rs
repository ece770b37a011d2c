//! The three controllers and what they share: the context handed to every reconciliation,
//! the error type whose category labels the error metric, and the status helpers.
//!
//! Each reconciliation runs the same pipeline: dereference (read what exists) → validate
//! (pure) → build the desired state (pure) → act (server-side apply, or Kafka admin calls)
//! → write status with conditions and publish an Event for each decision.

pub mod cluster;
pub mod consumer_group;
pub mod coordinator_roll;
pub mod ensemble;
pub mod membership;
pub mod roll;
pub mod scaling;
pub mod storage;
pub mod topic;

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::controller::Action;

use crate::crd::{Condition, ConditionStatus};
use crate::kafka::{KafkaConnector, KafkaError};
use crate::metrics::Metrics;
use crate::resources::BuildError;

pub struct Context<K> {
    pub client: Client,
    pub recorder: crate::events::Recorder,
    pub metrics: Arc<Metrics>,
    pub kafka: K,
    /// Reach every cluster's brokers at this address instead of its bootstrap Service. For
    /// an operator running outside the cluster network (development).
    pub bootstrap_override: Option<String>,
    /// The ClusterRole (from the chart) that lets a broker pod's rack lookup read nodes.
    pub broker_cluster_role: String,
    /// How long a rolling restart waits on one broker before it reports it stuck.
    pub roll_timeouts: crate::roller::Timeouts,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("serializing an object: {0}")]
    Serialization(#[from] serde_json::Error),
    #[error("coordinator: {0}")]
    Coordinator(String),
}

impl Error {
    /// The `category` label of `strata_operator_reconcile_errors_total`.
    pub fn category(&self) -> &'static str {
        use kube::runtime::finalizer::Error as F;
        match self {
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => "conflict",
            Error::Kube(_) => "kube_api",
            Error::Build(_) => "build",
            Error::Kafka(_) => "kafka",
            Error::Serialization(_) => "serialization",
            Error::Coordinator(_) => "coordinator",
            Error::Finalizer(inner) => match inner.as_ref() {
                F::ApplyFailed(e) | F::CleanupFailed(e) => e.category(),
                _ => "finalizer",
            },
        }
    }
}

impl<K> Context<K> {
    /// Shared error policy: count the failure by category, retry with a delay that keeps a
    /// broken API server or Kafka cluster from being hammered.
    pub fn on_error(&self, controller: &'static str, error: &Error) -> Action {
        self.metrics.failed(controller, error.category());
        tracing::warn!(controller, category = error.category(), %error, "reconcile failed");
        Action::requeue(Duration::from_secs(15))
    }
}

impl<K: KafkaConnector> Context<K> {
    /// Bootstrap servers of a cluster, unless overridden for an out-of-cluster operator.
    pub fn bootstrap_for(&self, in_cluster: String) -> String {
        self.bootstrap_override.clone().unwrap_or(in_cluster)
    }
}

/// RFC 3339 now, for condition transition times. Only the reconcilers call it; the pure
/// status builders take the time as an argument.
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map_or_else(
            |_| k8s_openapi::jiff::Timestamp::now().to_string(),
            |t| t.to_string(),
        )
}

pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: &str,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        reason: reason.into(),
        message: message.into(),
        last_transition_time: now.into(),
        observed_generation: generation,
    }
}

/// The condition of a type, if present and `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == ConditionStatus::True)
}

/// Deletes `name`. An object already gone is no error, nor, when `params` carries a
/// precondition, one replaced by another of the same name (409 Conflict).
pub(crate) async fn delete_if_present<T>(
    api: &kube::Api<T>,
    name: &str,
    params: &kube::api::DeleteParams,
) -> Result<(), Error>
where
    T: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 && params.preconditions.is_some() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
