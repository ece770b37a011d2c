//! The brokers: Kafka's `server.properties`, with `broker.id` and the advertised listener
//! filled in per pod from its ordinal and stable DNS name.

use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, SecretVolumeSource, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::statefulset::{self, CONFIG_DIR, DATA_DIR, StatefulSetParams};
use super::{ClusterNames, Component, config_hash, object_meta};
use crate::crd::KafkaClusterSpec;

/// `metrics.port` of every broker (Prometheus text on `/metrics`).
pub const BROKER_METRICS_PORT: i32 = 9404;
const TLS_DIR: &str = "/etc/strata/tls";

/// The properties every broker shares; the start script appends the per-pod ones.
pub fn broker_properties(spec: &KafkaClusterSpec) -> String {
    let mut props = String::new();
    let plain = spec.listeners.plain.port;
    match &spec.listeners.tls {
        None => {
            let _ = writeln!(props, "listeners=PLAINTEXT://0.0.0.0:{plain}");
        }
        Some(tls) => {
            let _ = writeln!(
                props,
                "listeners=PLAINTEXT://0.0.0.0:{plain},SSL://0.0.0.0:{}",
                tls.port
            );
            props.push_str("listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL\n");
            // KIP-651: one PEM file holding the private key and the certificate chain.
            props.push_str("ssl.keystore.type=PEM\n");
            props.push_str("ssl.keystore.location=/tmp/keystore.pem\n");
        }
    }
    let _ = writeln!(props, "log.dirs={DATA_DIR}/broker");
    // `zookeeper.connect` (the coordinator ensemble) is written once brokers keep their
    // metadata in the coordinator; until then each broker keeps it locally and would
    // refuse the key.
    let metrics_port = if spec.metrics.enabled {
        BROKER_METRICS_PORT
    } else {
        0
    };
    let _ = writeln!(props, "metrics.port={metrics_port}");
    for (key, value) in &spec.brokers.config {
        let _ = writeln!(props, "{key}={value}");
    }
    props
}

fn start_script(names: &ClusterNames, spec: &KafkaClusterSpec) -> String {
    let set = names.component(Component::Broker);
    let plain = spec.listeners.plain.port;
    let mut advertised = format!("PLAINTEXT://$POD_NAME.{set}.$POD_NAMESPACE.svc:{plain}");
    let mut tls_setup = String::new();
    if let Some(tls) = &spec.listeners.tls {
        let _ = write!(
            advertised,
            ",SSL://$POD_NAME.{set}.$POD_NAMESPACE.svc:{}",
            tls.port
        );
        tls_setup = format!("cat {TLS_DIR}/tls.key {TLS_DIR}/tls.crt > /tmp/keystore.pem\n");
    }
    format!(
        r#"ordinal="${{POD_NAME##*-}}"
mkdir -p {DATA_DIR}/broker
cp {CONFIG_DIR}/server.properties /tmp/server.properties
echo "broker.id=$ordinal" >> /tmp/server.properties
echo "advertised.listeners={advertised}" >> /tmp/server.properties
{tls_setup}exec strata-broker --config /tmp/server.properties
"#
    )
}

pub fn config_map(
    names: &ClusterNames,
    spec: &KafkaClusterSpec,
    owner: &OwnerReference,
) -> ConfigMap {
    ConfigMap {
        metadata: object_meta(
            names,
            names.config_map(Component::Broker),
            Component::Broker,
            owner,
        ),
        data: Some([("server.properties".to_string(), broker_properties(spec))].into()),
        ..ConfigMap::default()
    }
}

fn listener_ports(spec: &KafkaClusterSpec) -> Vec<ServicePort> {
    let mut ports = vec![ServicePort {
        name: Some("plain".into()),
        port: spec.listeners.plain.port,
        ..ServicePort::default()
    }];
    if let Some(tls) = &spec.listeners.tls {
        ports.push(ServicePort {
            name: Some("tls".into()),
            port: tls.port,
            ..ServicePort::default()
        });
    }
    ports
}

/// Headless: the per-broker DNS names brokers advertise, so a client reaches the leader of
/// each partition directly.
pub fn headless_service(
    names: &ClusterNames,
    spec: &KafkaClusterSpec,
    owner: &OwnerReference,
) -> Service {
    let mut ports = listener_ports(spec);
    ports.push(ServicePort {
        name: Some("metrics".into()),
        port: BROKER_METRICS_PORT,
        ..ServicePort::default()
    });
    Service {
        metadata: object_meta(
            names,
            names.component(Component::Broker),
            Component::Broker,
            owner,
        ),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(names.labels(Component::Broker)),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// A ClusterIP in front of the ready brokers: the one address clients are configured with.
pub fn bootstrap_service(
    names: &ClusterNames,
    spec: &KafkaClusterSpec,
    owner: &OwnerReference,
) -> Service {
    Service {
        metadata: object_meta(names, names.bootstrap(), Component::Broker, owner),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(names.labels(Component::Broker)),
            ports: Some(listener_ports(spec)),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

pub fn stateful_set(
    names: &ClusterNames,
    spec: &KafkaClusterSpec,
    owner: &OwnerReference,
) -> StatefulSet {
    let props = broker_properties(spec);
    let script = start_script(names, spec);
    let mut ports = vec![("plain", spec.listeners.plain.port)];
    let mut extra_volumes = Vec::new();
    if let Some(tls) = &spec.listeners.tls {
        ports.push(("tls", tls.port));
        extra_volumes.push((
            Volume {
                name: "tls".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(tls.secret_name.clone()),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            },
            VolumeMount {
                name: "tls".into(),
                mount_path: TLS_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ));
    }
    ports.push(("metrics", BROKER_METRICS_PORT));
    statefulset::build(StatefulSetParams {
        names,
        component: Component::Broker,
        owner,
        replicas: spec.brokers.replicas,
        image: &spec.image,
        config_hash: config_hash(&[&props, &script]),
        start_script: script,
        ports,
        ready_port: spec.listeners.plain.port,
        storage: &spec.brokers.storage,
        resources: spec.brokers.resources.as_ref(),
        spread_topology_key: spec.brokers.rack.as_ref().map(|r| r.topology_key.as_str()),
        extra_volumes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{RackSpec, TlsListener};
    use crate::resources::tests::{sample_cluster, sample_spec};
    use crate::resources::{Desired, statefulset::container};

    #[test]
    fn server_properties_keep_user_config_and_only_keys_the_broker_knows() {
        let props = broker_properties(&sample_spec());
        assert_eq!(
            props,
            "listeners=PLAINTEXT://0.0.0.0:9092\n\
             log.dirs=/var/lib/strata/broker\n\
             metrics.port=0\n\
             num.partitions=6\n"
        );
    }

    #[test]
    fn broker_id_and_advertised_listener_come_from_the_pod() {
        let desired = Desired::build(&sample_cluster(sample_spec())).unwrap();
        let script = &container(&desired.brokers).command.as_ref().unwrap()[2];
        assert!(script.contains(r#"echo "broker.id=$ordinal""#), "{script}");
        assert!(
            script.contains(
                r#"echo "advertised.listeners=PLAINTEXT://$POD_NAME.events-broker.$POD_NAMESPACE.svc:9092""#
            ),
            "{script}"
        );
        assert!(script.ends_with("exec strata-broker --config /tmp/server.properties\n"));
    }

    #[test]
    fn replicas_and_config_hash_follow_the_spec() {
        let mut spec = sample_spec();
        let before = Desired::build(&sample_cluster(spec.clone()))
            .unwrap()
            .brokers;
        spec.brokers.replicas = 5;
        let scaled = Desired::build(&sample_cluster(spec.clone()))
            .unwrap()
            .brokers;
        assert_eq!(scaled.spec.as_ref().unwrap().replicas, Some(5));
        let hash = |s: &StatefulSet| {
            s.spec
                .as_ref()
                .unwrap()
                .template
                .metadata
                .as_ref()
                .unwrap()
                .annotations
                .as_ref()
                .unwrap()["strata.dev/config-hash"]
                .clone()
        };
        // Scaling alone must not restart the running brokers.
        assert_eq!(hash(&before), hash(&scaled));
        spec.brokers
            .config
            .insert("log.retention.ms".into(), "1000".into());
        let reconfigured = Desired::build(&sample_cluster(spec)).unwrap().brokers;
        assert_ne!(hash(&before), hash(&reconfigured));
    }

    #[test]
    fn tls_listener_mounts_the_secret_and_is_advertised() {
        let mut spec = sample_spec();
        spec.listeners.tls = Some(TlsListener {
            port: 9093,
            secret_name: "events-tls".into(),
        });
        spec.metrics.enabled = true;
        let desired = Desired::build(&sample_cluster(spec.clone())).unwrap();
        let props = &desired.config_maps[1].data.as_ref().unwrap()["server.properties"];
        assert!(props.starts_with("listeners=PLAINTEXT://0.0.0.0:9092,SSL://0.0.0.0:9093\n"));
        assert!(props.contains("metrics.port=9404\n"));
        let c = container(&desired.brokers);
        assert!(
            c.command.as_ref().unwrap()[2]
                .contains(",SSL://$POD_NAME.events-broker.$POD_NAMESPACE.svc:9093")
        );
        let ports: Vec<i32> = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.container_port)
            .collect();
        assert_eq!(ports, [9092, 9093, 9404]);
        let pod = desired
            .brokers
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        let secret = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find_map(|v| v.secret.as_ref())
            .unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("events-tls"));
        let bootstrap = &desired.services[2];
        assert_eq!(bootstrap.metadata.name.as_deref(), Some("events-bootstrap"));
        assert_eq!(
            bootstrap
                .spec
                .as_ref()
                .unwrap()
                .ports
                .as_ref()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn rack_spreads_brokers_over_the_topology_key() {
        let mut spec = sample_spec();
        spec.brokers.rack = Some(RackSpec {
            topology_key: "topology.kubernetes.io/zone".into(),
        });
        let desired = Desired::build(&sample_cluster(spec)).unwrap();
        let pod = desired
            .brokers
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        let spread = &pod.topology_spread_constraints.as_ref().unwrap()[0];
        assert_eq!(spread.topology_key, "topology.kubernetes.io/zone");
        assert_eq!(spread.max_skew, 1);
    }
}
