//! Wiring for `strata-operator run`: one controller per kind and watched namespace, the
//! health/metrics endpoint, and a clean stop on SIGTERM.

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, Resource};

use crate::controller::{Context, cluster, consumer_group, topic};
use crate::crd::{ConsumerGroup, KafkaCluster, Topic};
use crate::kafka::KafkaConnector;
use crate::metrics::Metrics;

/// Namespaces to watch: every namespace, or the listed ones (the chart's `watchNamespaces`).
#[derive(Clone, Debug)]
pub enum Scope {
    Cluster,
    Namespaces(Vec<String>),
}

impl Scope {
    fn apis<K>(&self, client: &Client) -> Vec<Api<K>>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match self {
            Scope::Cluster => vec![Api::all(client.clone())],
            Scope::Namespaces(list) => list
                .iter()
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "the {0} CRD is not served by the API server ({1}); install it first: `kubectl apply -f crds/` or `strata-operator crds | kubectl apply -f -`"
    )]
    MissingCrd(&'static str, kube::Error),
}

/// Fails fast when a CRD is missing rather than letting watchers retry forever.
async fn check_crds(client: &Client, scope: &Scope) -> Result<(), StartError> {
    let lp = ListParams::default().limit(1);
    for api in scope.apis::<KafkaCluster>(client) {
        api.list(&lp)
            .await
            .map_err(|e| StartError::MissingCrd("KafkaCluster", e))?;
    }
    for api in scope.apis::<Topic>(client) {
        api.list(&lp)
            .await
            .map_err(|e| StartError::MissingCrd("Topic", e))?;
    }
    for api in scope.apis::<ConsumerGroup>(client) {
        api.list(&lp)
            .await
            .map_err(|e| StartError::MissingCrd("ConsumerGroup", e))?;
    }
    Ok(())
}

/// What `strata-operator run` is told on its command line besides the scope.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// See [`Context::bootstrap_override`].
    pub bootstrap_override: Option<String>,
    /// See [`Context::broker_cluster_role`].
    pub broker_cluster_role: String,
    /// See [`Context::roll_timeouts`].
    pub roll_timeouts: crate::roller::Timeouts,
}

pub async fn run<K: KafkaConnector>(
    client: Client,
    scope: Scope,
    kafka: K,
    settings: Settings,
    metrics: Arc<Metrics>,
) -> Result<(), StartError> {
    check_crds(&client, &scope).await?;
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: crate::events::Recorder::new(
            client.clone(),
            "strata-operator",
            std::env::var("POD_NAME").ok(),
        ),
        metrics: metrics.clone(),
        kafka,
        bootstrap_override: settings.bootstrap_override,
        broker_cluster_role: settings.broker_cluster_role,
        roll_timeouts: settings.roll_timeouts,
    });
    let mut controllers: Vec<BoxFuture<'static, ()>> = Vec::new();
    let statefulsets = scope.apis::<StatefulSet>(&client);
    let namespaces: Vec<Option<String>> = match &scope {
        Scope::Cluster => vec![None],
        Scope::Namespaces(list) => list.iter().cloned().map(Some).collect(),
    };
    for ((clusters, statefulsets), secrets_scope) in scope
        .apis::<KafkaCluster>(&client)
        .into_iter()
        .zip(statefulsets)
        .zip(namespaces)
    {
        let managed =
            watcher::Config::default().labels("app.kubernetes.io/managed-by=strata-operator");
        let controller =
            Controller::new(clusters, watcher::Config::default()).owns(statefulsets, managed);
        // A TLS listener's Secret, created late or renewed, brings a pass of every cluster
        // in its namespace that names it (which then rolls the brokers onto it).
        let store = controller.store();
        let secrets: Api<Secret> = match &secrets_scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let controller =
            controller.watches(secrets, watcher::Config::default(), move |secret| {
                store
                    .state()
                    .into_iter()
                    .filter(|kc| {
                        kc.metadata.namespace == secret.metadata.namespace
                            && kc.spec.listeners.tls.as_ref().is_some_and(|t| {
                                Some(&t.secret_name) == secret.metadata.name.as_ref()
                            })
                    })
                    .map(|kc| ObjectRef::from_obj(&*kc))
                    .collect::<Vec<_>>()
            });
        controllers.push(Box::pin(
            controller
                .shutdown_on_signal()
                .run(cluster::reconcile, cluster::error_policy, ctx.clone())
                .for_each(|res| log_result("kafkacluster", res)),
        ));
    }
    for topics in scope.apis::<Topic>(&client) {
        controllers.push(Box::pin(
            Controller::new(topics, watcher::Config::default())
                .shutdown_on_signal()
                .run(topic::reconcile, topic::error_policy, ctx.clone())
                .for_each(|res| log_result("topic", res)),
        ));
    }
    for groups in scope.apis::<ConsumerGroup>(&client) {
        controllers.push(Box::pin(
            Controller::new(groups, watcher::Config::default())
                .shutdown_on_signal()
                .run(
                    consumer_group::reconcile,
                    consumer_group::error_policy,
                    ctx.clone(),
                )
                .for_each(|res| log_result("consumergroup", res)),
        ));
    }
    metrics.set_ready();
    tracing::info!(?scope, "controllers started");
    futures::future::join_all(controllers).await;
    tracing::info!("controllers stopped");
    Ok(())
}

async fn log_result<T: std::fmt::Debug, E: std::fmt::Display>(
    controller: &'static str,
    res: Result<T, E>,
) {
    match res {
        Ok(obj) => tracing::debug!(controller, ?obj, "reconciled"),
        Err(err) => tracing::debug!(controller, %err, "reconcile did not complete"),
    }
}
