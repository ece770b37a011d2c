//! The brokers: Kafka's `server.properties`, with `broker.id` and the advertised listener
//! filled in per pod from its ordinal and stable DNS name, and `broker.rack` from the
//! node's topology label when `spec.brokers.rack` asks for it (see [`super::rack`]).

use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::coordinator::COORDINATOR_CLIENT_PORT;
use super::statefulset::{self, CONFIG_DIR, DATA_DIR, Probes, RUN_DIR, StatefulSetParams};
use super::{ClusterNames, Component, config_hash, object_meta, rack};
use crate::crd::KafkaClusterSpec;

/// `metrics.port` of every broker (Prometheus text on `/metrics`).
pub const BROKER_METRICS_PORT: i32 = 9404;
const TLS_DIR: &str = "/etc/strata/tls";

/// The properties every broker shares; the start script appends the per-pod ones.
pub fn broker_properties(names: &ClusterNames, spec: &KafkaClusterSpec) -> String {
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
            let _ = writeln!(props, "ssl.keystore.location={RUN_DIR}/keystore.pem");
        }
    }
    let _ = writeln!(props, "log.dirs={DATA_DIR}/broker");
    // Every member of the ensemble by its stable name: the broker's ZooKeeper client
    // resolves each name when it connects, so a coordinator pod that moved is found again.
    let members = spec.coordinator.replicas + spec.coordinator.observers;
    let connect: Vec<String> = (0..members)
        .map(|ordinal| {
            format!(
                "{}:{COORDINATOR_CLIENT_PORT}",
                names.pod_dns(Component::Coordinator, ordinal)
            )
        })
        .collect();
    let _ = writeln!(props, "zookeeper.connect={}", connect.join(","));
    // Always on, whatever `spec.metrics` says: the readiness probe reads
    // `strata_broker_ready` from it.
    let _ = writeln!(props, "metrics.port={BROKER_METRICS_PORT}");
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
        tls_setup = format!("cat {TLS_DIR}/tls.key {TLS_DIR}/tls.crt > {RUN_DIR}/keystore.pem\n");
    }
    let rack = if spec.brokers.rack.is_some() {
        format!(
            "echo \"broker.rack=$(cat {})\" >> \"$config\"\n",
            rack::RACK_FILE
        )
    } else {
        String::new()
    };
    format!(
        r#"ordinal="${{POD_NAME##*-}}"
config={RUN_DIR}/server.properties
mkdir -p {DATA_DIR}/broker
cp {CONFIG_DIR}/server.properties "$config"
echo "broker.id=$ordinal" >> "$config"
echo "advertised.listeners={advertised}" >> "$config"
{rack}{tls_setup}exec strata-broker --config "$config"
"#
    )
}

/// Alive: the Kafka port accepts (the broker binds it before opening its logs, so log
/// recovery does not look like a hang). Ready: the broker's metrics say the controller
/// has described the cluster to it (`strata_broker_ready 1`) and the Kafka port accepts.
fn probes(spec: &KafkaClusterSpec) -> Probes {
    Probes {
        alive_port: spec.listeners.plain.port,
        ready_command: vec![
            "strata-operator".into(),
            "probe".into(),
            "broker".into(),
            format!("--metrics-port={BROKER_METRICS_PORT}"),
            format!("--kafka-port={}", spec.listeners.plain.port),
        ],
    }
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
        data: Some(
            [(
                "server.properties".to_string(),
                broker_properties(names, spec),
            )]
            .into(),
        ),
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

/// The broker's configuration without `zookeeper.connect`.
fn without_members(props: &str) -> String {
    props
        .lines()
        .filter(|l| !l.starts_with("zookeeper.connect="))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn stateful_set(
    names: &ClusterNames,
    spec: &KafkaClusterSpec,
    owner: &OwnerReference,
) -> StatefulSet {
    let props = broker_properties(names, spec);
    let script = start_script(names, spec);
    let rack = spec
        .brokers
        .rack
        .as_ref()
        .map(|r| rack::BrokerRack::new(spec, r));
    let mut ports = vec![("plain", spec.listeners.plain.port)];
    let mut extra_volumes = Vec::new();
    if let Some(tls) = &spec.listeners.tls {
        ports.push(("tls", tls.port));
        extra_volumes.push(statefulset::secret_volume("tls", &tls.secret_name, TLS_DIR));
    }
    ports.push(("metrics", BROKER_METRICS_PORT));
    statefulset::build(StatefulSetParams {
        names,
        component: Component::Broker,
        owner,
        replicas: spec.brokers.replicas,
        image: &spec.image,
        // The ensemble's members change by reconfiguration without restarting anybody;
        // a running broker keeps the members it connected with (any that stays serves it),
        // a broker that starts later gets the new list.
        config_hash: config_hash(&[&without_members(&props), &script]),
        start_script: script,
        ports,
        probes: probes(spec),
        storage: &spec.brokers.storage,
        resources: spec.brokers.resources.as_ref(),
        spread_topology_key: spec.brokers.rack.as_ref().map(|r| r.topology_key.as_str()),
        extra_volumes,
        service_account: rack.as_ref().map(|_| names.broker_service_account()),
        init_containers: rack.iter().map(rack::BrokerRack::init_container).collect(),
        init_volumes: rack.iter().map(|_| rack::api_token_volume()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{RackSpec, TlsListener};
    use crate::resources::Desired;
    use crate::resources::statefulset::{container, pod_spec};
    use crate::resources::tests::{sample_cluster, sample_spec};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn server_properties_keep_user_config_and_only_keys_the_broker_knows() {
        let props = broker_properties(&ClusterNames::new("events", "prod"), &sample_spec());
        assert_eq!(
            props,
            "listeners=PLAINTEXT://0.0.0.0:9092\n\
             log.dirs=/var/lib/strata/broker\n\
             zookeeper.connect=events-coordinator-0.events-coordinator.prod.svc:2181,\
             events-coordinator-1.events-coordinator.prod.svc:2181,\
             events-coordinator-2.events-coordinator.prod.svc:2181\n\
             metrics.port=9404\n\
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
        assert!(script.contains("config=/run/strata/server.properties\n"));
        assert!(!script.contains("broker.rack"), "{script}");
        assert!(script.ends_with("exec strata-broker --config \"$config\"\n"));
    }

    #[test]
    fn liveness_waits_out_log_recovery_and_readiness_asks_the_broker() {
        let desired = Desired::build(&sample_cluster(sample_spec())).unwrap();
        let c = container(&desired.brokers);
        let port =
            |p: &k8s_openapi::api::core::v1::Probe| p.tcp_socket.as_ref().unwrap().port.clone();
        let startup = c.startup_probe.as_ref().unwrap();
        assert!(startup.period_seconds.unwrap() * startup.failure_threshold.unwrap() >= 30 * 60);
        assert_eq!(port(startup), IntOrString::Int(9092));
        assert_eq!(
            port(c.liveness_probe.as_ref().unwrap()),
            IntOrString::Int(9092)
        );
        let ready = c.readiness_probe.as_ref().unwrap().exec.as_ref().unwrap();
        assert_eq!(
            ready.command.as_ref().unwrap(),
            &[
                "strata-operator",
                "probe",
                "broker",
                "--metrics-port=9404",
                "--kafka-port=9092"
            ]
        );
    }

    #[test]
    fn only_the_volumes_are_writable_and_no_token_is_mounted() {
        let desired = Desired::build(&sample_cluster(sample_spec())).unwrap();
        let c = container(&desired.brokers);
        let security = c.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        let mounts: Vec<(&str, bool)> = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| (m.mount_path.as_str(), m.read_only.unwrap_or(false)))
            .collect();
        assert_eq!(
            mounts,
            [
                ("/etc/strata", true),
                ("/var/lib/strata", false),
                ("/run/strata", false),
                ("/tmp", false)
            ]
        );
        let pod = pod_spec(&desired.brokers);
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.enable_service_links, Some(false));
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
        // Nor does growing the coordinator ensemble, which reconfiguration does in place.
        spec.coordinator.replicas = 5;
        let more_coordinators = Desired::build(&sample_cluster(spec.clone()))
            .unwrap()
            .brokers;
        assert_eq!(hash(&before), hash(&more_coordinators));
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
        let pod = pod_spec(&desired.brokers);
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
        let pod = pod_spec(&desired.brokers);
        let spread = &pod.topology_spread_constraints.as_ref().unwrap()[0];
        assert_eq!(spread.topology_key, "topology.kubernetes.io/zone");
        assert_eq!(spread.max_skew, 1);
    }
}
