//! A Prometheus Operator `ServiceMonitor` scraping brokers and coordinators. Built as JSON
//! because its CRD is optional: the controller applies it only when the API server serves
//! `monitoring.coreos.com/v1`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;

use super::ClusterNames;

pub fn service_monitor(names: &ClusterNames, owner: &OwnerReference) -> serde_json::Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": names.cluster,
            "namespace": names.namespace,
            "labels": {
                "app.kubernetes.io/name": "strata",
                "app.kubernetes.io/instance": names.cluster,
                "app.kubernetes.io/managed-by": super::FIELD_MANAGER,
            },
            "ownerReferences": [owner],
        },
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "strata",
                    "app.kubernetes.io/instance": names.cluster,
                }
            },
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}],
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::resources::Desired;
    use crate::resources::tests::{sample_cluster, sample_spec};

    #[test]
    fn metrics_enabled_adds_a_service_monitor_for_the_metrics_ports() {
        let mut spec = sample_spec();
        spec.metrics.enabled = true;
        let sm = Desired::build(&sample_cluster(spec))
            .unwrap()
            .service_monitor
            .unwrap();
        assert_eq!(sm["kind"], "ServiceMonitor");
        assert_eq!(sm["metadata"]["ownerReferences"][0]["kind"], "KafkaCluster");
        assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
        assert_eq!(
            sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"],
            "events"
        );
    }
}
