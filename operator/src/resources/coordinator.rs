//! The coordinator ensemble: ZooKeeper's `zoo.cfg` with one `server.N` line per ordinal.

use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::statefulset::{self, CONFIG_DIR, DATA_DIR, Probes, RUN_DIR, StatefulSetParams};
use super::{ClusterNames, Component, config_hash, object_meta};
use crate::crd::KafkaClusterSpec;
use crate::membership::desired_members;
use strata_coordinator::config::PeerRole;

pub const COORDINATOR_CLIENT_PORT: i32 = 2181;
pub const COORDINATOR_QUORUM_PORT: i32 = 2888;
pub const COORDINATOR_ELECTION_PORT: i32 = 3888;
pub const COORDINATOR_METRICS_PORT: i32 = 7000;

/// Where the super user's digest is mounted (the admin Secret's `digest` key).
const ADMIN_DIR: &str = "/etc/strata/coordinator-admin";

/// A member's `server.N` line, as zoo.cfg holds it and as `reconfig` adds it (ids are
/// ordinal + 1: ZooKeeper's documentation and tools count members from 1): its stable
/// name, quorum and election ports, role and client port (which a reconfiguration needs).
pub fn server_line(names: &ClusterNames, id: i32, role: PeerRole) -> String {
    let role = match role {
        PeerRole::Participant => "participant",
        PeerRole::Observer => "observer",
    };
    format!(
        "server.{id}={}:{COORDINATOR_QUORUM_PORT}:{COORDINATOR_ELECTION_PORT}:{role};{COORDINATOR_CLIENT_PORT}",
        names.pod_dns(Component::Coordinator, id - 1),
    )
}

/// The ensemble's shared configuration. Voters are ordinals `0..replicas`, observers the
/// ordinals after them. Dynamic reconfiguration is on: the `server.N` lines are what a
/// member starting for the first time uses (the desired members; a new member joins
/// with them), while a member that ran before keeps the configuration the ensemble
/// reconfigured to (`dataDir/currentConfig`). `standaloneEnabled=false`, so an ensemble
/// of one can grow.
pub fn zoo_cfg(names: &ClusterNames, spec: &KafkaClusterSpec) -> String {
    let mut cfg = settings(spec);
    for (id, role) in desired_members(spec.coordinator.replicas, spec.coordinator.observers) {
        let _ = writeln!(cfg, "{}", server_line(names, id, role));
    }
    cfg
}

/// zoo.cfg without the membership: what restarts the members when it changes.
fn settings(spec: &KafkaClusterSpec) -> String {
    let mut cfg = String::new();
    cfg.push_str("tickTime=2000\ninitLimit=10\nsyncLimit=5\n");
    let _ = writeln!(cfg, "dataDir={DATA_DIR}/coordinator");
    let _ = writeln!(cfg, "clientPort={COORDINATOR_CLIENT_PORT}");
    // Listen for quorum and election traffic on every interface: a member's own `server.N`
    // name resolves only once its pod's address is published on the headless Service.
    cfg.push_str("quorumListenOnAllIPs=true\n");
    cfg.push_str("reconfigEnabled=true\nstandaloneEnabled=false\n");
    // The coordinator serves metrics by default; 0 turns them off.
    let metrics_port = if spec.metrics.enabled {
        COORDINATOR_METRICS_PORT
    } else {
        0
    };
    let _ = writeln!(cfg, "metricsProvider.httpPort={metrics_port}");
    cfg
}

/// The member's id from its ordinal; an observer (by its own line) also says so with
/// `peerType`, as ZooKeeper wants; the super user's digest comes from the admin Secret.
fn start_script() -> String {
    format!(
        r#"ordinal="${{POD_NAME##*-}}"
id=$((ordinal + 1))
mkdir -p {DATA_DIR}/coordinator
echo "$id" > {DATA_DIR}/coordinator/myid
cp {CONFIG_DIR}/zoo.cfg {RUN_DIR}/zoo.cfg
if grep -q "^server\.$id=.*:observer;" {RUN_DIR}/zoo.cfg; then echo "peerType=observer" >> {RUN_DIR}/zoo.cfg; fi
echo "DigestAuthenticationProvider.superDigest=$(cat {ADMIN_DIR}/digest)" >> {RUN_DIR}/zoo.cfg
exec strata-coordinator --config {RUN_DIR}/zoo.cfg
"#
    )
}

/// Alive: the client port accepts (it is bound before the member looks for its peers).
/// Ready: `srvr` answers with a mode, which a member only does once it leads, follows or
/// observes, i.e. is in the quorum.
fn probes() -> Probes {
    Probes {
        alive_port: COORDINATOR_CLIENT_PORT,
        ready_command: vec![
            "strata-operator".into(),
            "probe".into(),
            "coordinator".into(),
            format!("--client-port={COORDINATOR_CLIENT_PORT}"),
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
            names.config_map(Component::Coordinator),
            Component::Coordinator,
            owner,
        ),
        data: Some([("zoo.cfg".to_string(), zoo_cfg(names, spec))].into()),
        ..ConfigMap::default()
    }
}

/// Headless: gives each member the stable DNS name `server.N` points at. Not-ready
/// addresses are published because members must find each other before any is ready.
pub fn headless_service(
    names: &ClusterNames,
    _spec: &KafkaClusterSpec,
    owner: &OwnerReference,
) -> Service {
    let port = |name: &str, port: i32| ServicePort {
        name: Some(name.into()),
        port,
        ..ServicePort::default()
    };
    Service {
        metadata: object_meta(
            names,
            names.component(Component::Coordinator),
            Component::Coordinator,
            owner,
        ),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(names.labels(Component::Coordinator)),
            ports: Some(vec![
                port("client", COORDINATOR_CLIENT_PORT),
                port("quorum", COORDINATOR_QUORUM_PORT),
                port("election", COORDINATOR_ELECTION_PORT),
                port("metrics", COORDINATOR_METRICS_PORT),
            ]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The coordinators' StatefulSet at the ensemble's desired size; while the membership
/// changes the controller sets the size the step needs ([`crate::membership`]).
pub fn stateful_set(
    names: &ClusterNames,
    spec: &KafkaClusterSpec,
    owner: &OwnerReference,
) -> StatefulSet {
    let script = start_script();
    let admin = statefulset::secret_volume(
        "coordinator-admin",
        &names.coordinator_admin_secret(),
        ADMIN_DIR,
    );
    statefulset::build(StatefulSetParams {
        names,
        component: Component::Coordinator,
        owner,
        replicas: spec.coordinator.replicas + spec.coordinator.observers,
        image: &spec.image,
        // Not the membership: members join and leave by reconfiguration, not restarts.
        config_hash: config_hash(&[&settings(spec), &script]),
        start_script: script,
        ports: vec![
            ("client", COORDINATOR_CLIENT_PORT),
            ("quorum", COORDINATOR_QUORUM_PORT),
            ("election", COORDINATOR_ELECTION_PORT),
            ("metrics", COORDINATOR_METRICS_PORT),
        ],
        probes: probes(),
        storage: &spec.coordinator.storage,
        resources: spec.coordinator.resources.as_ref(),
        spread_topology_key: None,
        extra_volumes: vec![admin],
        init_containers: Vec::new(),
        service_account: None,
        init_volumes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::tests::{sample_cluster, sample_spec};
    use crate::resources::{Desired, statefulset::container};

    #[test]
    fn zoo_cfg_lists_every_member_by_stable_name() {
        let mut spec = sample_spec();
        spec.coordinator.observers = 1;
        let cfg = zoo_cfg(&ClusterNames::new("events", "prod"), &spec);
        let servers: Vec<&str> = cfg.lines().filter(|l| l.starts_with("server.")).collect();
        assert_eq!(
            servers,
            [
                "server.1=events-coordinator-0.events-coordinator.prod.svc:2888:3888:participant;2181",
                "server.2=events-coordinator-1.events-coordinator.prod.svc:2888:3888:participant;2181",
                "server.3=events-coordinator-2.events-coordinator.prod.svc:2888:3888:participant;2181",
                "server.4=events-coordinator-3.events-coordinator.prod.svc:2888:3888:observer;2181",
            ]
        );
        // Parsed as the coordinator parses it.
        let parsed = strata_coordinator::config::Config::parse(&cfg, "zoo.cfg").unwrap();
        assert_eq!(parsed.servers.len(), 4);
        assert!(parsed.reconfig_enabled && !parsed.standalone_enabled);
        assert!(cfg.contains("clientPort=2181\n"));
        assert!(cfg.contains("dataDir=/var/lib/strata/coordinator\n"));
        assert!(cfg.contains("metricsProvider.httpPort=0\n"));
    }

    #[test]
    fn stateful_set_runs_voters_and_observers_with_myid_from_the_ordinal() {
        let mut spec = sample_spec();
        spec.coordinator.observers = 2;
        let desired = Desired::build(&sample_cluster(spec)).unwrap();
        let sts = &desired.coordinator;
        let s = sts.spec.as_ref().unwrap();
        assert_eq!(sts.metadata.name.as_deref(), Some("events-coordinator"));
        assert_eq!(s.replicas, Some(5));
        assert_eq!(s.service_name.as_deref(), Some("events-coordinator"));
        let script = &container(sts).command.as_ref().unwrap()[2];
        assert!(script.contains(r#"echo "$id" > /var/lib/strata/coordinator/myid"#));
        assert!(script.contains(r#"if grep -q "^server\.$id=.*:observer;" /run/strata/zoo.cfg; then echo "peerType=observer""#));
        assert!(script.contains(
            "DigestAuthenticationProvider.superDigest=$(cat /etc/strata/coordinator-admin/digest)"
        ));
        // The coordinator is PID 1 and handles the kubelet's SIGTERM itself.
        assert!(script.ends_with("exec strata-coordinator --config /run/strata/zoo.cfg\n"));
        // Ready once in the quorum, which `srvr` tells.
        let ready = container(sts).readiness_probe.as_ref().unwrap();
        assert_eq!(
            ready.exec.as_ref().unwrap().command.as_ref().unwrap(),
            &[
                "strata-operator",
                "probe",
                "coordinator",
                "--client-port=2181"
            ]
        );
        let claim = &s.volume_claim_templates.as_ref().unwrap()[0];
        let claim_spec = claim.spec.as_ref().unwrap();
        assert_eq!(claim_spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            claim_spec
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()["storage"]
                .0,
            "1Gi"
        );
    }

    #[test]
    fn a_membership_change_restarts_no_member() {
        let hash = |spec| {
            let desired = Desired::build(&sample_cluster(spec)).unwrap();
            let t = desired.coordinator.spec.unwrap().template;
            t.metadata.unwrap().annotations.unwrap()
        };
        let mut grown = sample_spec();
        grown.coordinator.replicas = 5;
        grown.coordinator.observers = 1;
        assert_eq!(hash(sample_spec()), hash(grown));
        let mut metrics = sample_spec();
        metrics.metrics.enabled = !metrics.metrics.enabled;
        assert_ne!(hash(sample_spec()), hash(metrics));
    }

    #[test]
    fn headless_service_publishes_not_ready_members() {
        let desired = Desired::build(&sample_cluster(sample_spec())).unwrap();
        let svc = &desired.services[0];
        let s = svc.spec.as_ref().unwrap();
        assert_eq!(svc.metadata.name.as_deref(), Some("events-coordinator"));
        assert_eq!(s.cluster_ip.as_deref(), Some("None"));
        assert_eq!(s.publish_not_ready_addresses, Some(true));
        let ports: Vec<i32> = s.ports.as_ref().unwrap().iter().map(|p| p.port).collect();
        assert_eq!(ports, [2181, 2888, 3888, 7000]);
    }
}
