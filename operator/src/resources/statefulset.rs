//! The StatefulSet shape both roles share: stable pod names for stable identities
//! (`broker.id`, `myid`), one PersistentVolumeClaim per pod, configuration from a ConfigMap.
//!
//! The root filesystem is read-only. A start script renders the pod's own configuration
//! (shared ConfigMap + what only this pod knows: its ordinal, name, rack) into
//! [`RUN_DIR`], an emptyDir; `/tmp` is an emptyDir too. No container gets API credentials
//! unless a role asks for an init container that needs them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    ExecAction, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SecretVolumeSource, SecurityContext,
    TCPSocketAction, TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ClusterNames, Component, object_meta, resource_requirements};
use crate::crd::{Resources, StorageSpec};

/// Where the ConfigMap is mounted in every container.
pub const CONFIG_DIR: &str = "/etc/strata";
/// Where the PersistentVolumeClaim is mounted.
pub const DATA_DIR: &str = "/var/lib/strata";
/// The pod's rendered configuration (an emptyDir: written at start, gone with the pod).
pub const RUN_DIR: &str = "/run/strata";
/// The runtime image's unprivileged user (see the Dockerfile).
const RUN_AS_USER: i64 = 10001;

/// How long a starting member may take before it has to look alive: log recovery after
/// an unclean stop reads every segment that was not flushed, which can take many minutes
/// on a large broker; the liveness probe only starts counting after this.
const STARTUP_SECONDS: i32 = 30 * 60;
const STARTUP_PERIOD_SECONDS: i32 = 5;

/// How a role's container tells the kubelet it lives and serves.
pub struct Probes {
    /// Accepting TCP connections here means the process lives (startup and liveness).
    pub alive_port: i32,
    /// Exits 0 when the member serves: a broker the controller described the cluster to,
    /// a coordinator in the quorum. Run in the container (see `strata-operator probe`).
    pub ready_command: Vec<String>,
}

impl Probes {
    fn startup(&self) -> Probe {
        Probe {
            tcp_socket: Some(tcp(self.alive_port)),
            period_seconds: Some(STARTUP_PERIOD_SECONDS),
            failure_threshold: Some(STARTUP_SECONDS / STARTUP_PERIOD_SECONDS),
            ..Probe::default()
        }
    }

    fn liveness(&self) -> Probe {
        Probe {
            tcp_socket: Some(tcp(self.alive_port)),
            period_seconds: Some(10),
            timeout_seconds: Some(5),
            failure_threshold: Some(6),
            ..Probe::default()
        }
    }

    fn readiness(&self) -> Probe {
        Probe {
            exec: Some(ExecAction {
                command: Some(self.ready_command.clone()),
            }),
            period_seconds: Some(5),
            timeout_seconds: Some(5),
            failure_threshold: Some(2),
            ..Probe::default()
        }
    }
}

fn tcp(port: i32) -> TCPSocketAction {
    TCPSocketAction {
        port: IntOrString::Int(port),
        ..TCPSocketAction::default()
    }
}

pub struct StatefulSetParams<'a> {
    pub names: &'a ClusterNames,
    pub component: Component,
    pub owner: &'a OwnerReference,
    pub replicas: i32,
    pub image: &'a str,
    /// A POSIX shell script: the per-pod part of the configuration (ordinals become ids)
    /// is derived at start-up from `$POD_NAME`, then the program is exec'ed.
    pub start_script: String,
    pub ports: Vec<(&'static str, i32)>,
    pub probes: Probes,
    pub storage: &'a StorageSpec,
    pub resources: Option<&'a Resources>,
    pub config_hash: String,
    pub spread_topology_key: Option<&'a str>,
    pub extra_volumes: Vec<(Volume, VolumeMount)>,
    /// Run before the role's container, sharing its volumes; e.g. the broker's rack lookup.
    pub init_containers: Vec<Container>,
    /// Only for init containers that call the API; the role's own container never gets a
    /// token mounted.
    pub service_account: Option<String>,
    /// Volumes only the init containers mount (e.g. their ServiceAccount token).
    pub init_volumes: Vec<Volume>,
}

/// A Secret mounted read-only at `dir` (for `extra_volumes`).
pub fn secret_volume(name: &str, secret: &str, dir: &str) -> (Volume, VolumeMount) {
    (
        Volume {
            name: name.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.into()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
        VolumeMount {
            name: name.into(),
            mount_path: dir.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
    )
}

pub fn build(p: StatefulSetParams<'_>) -> StatefulSet {
    let name = p.names.component(p.component);
    let labels = p.names.labels(p.component);
    let empty_dir = |name: &str| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: p.names.config_map(p.component),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        empty_dir("run"),
        empty_dir("tmp"),
    ];
    let mut mounts = vec![
        VolumeMount {
            name: "config".into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "data".into(),
            mount_path: DATA_DIR.into(),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "run".into(),
            mount_path: RUN_DIR.into(),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        },
    ];
    for (volume, mount) in p.extra_volumes {
        volumes.push(volume);
        mounts.push(mount);
    }
    volumes.extend(p.init_volumes);
    let container = Container {
        name: p.component.as_str().into(),
        image: Some(p.image.into()),
        command: Some(vec!["/bin/sh".into(), "-ec".into(), p.start_script]),
        env: Some(vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
        ]),
        ports: Some(
            p.ports
                .iter()
                .map(|&(name, port)| ContainerPort {
                    name: Some(name.into()),
                    container_port: port,
                    ..ContainerPort::default()
                })
                .collect(),
        ),
        startup_probe: Some(p.probes.startup()),
        liveness_probe: Some(p.probes.liveness()),
        readiness_probe: Some(p.probes.readiness()),
        resources: resource_requirements(p.resources),
        security_context: Some(container_security_context()),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let init_containers = (!p.init_containers.is_empty()).then_some(p.init_containers);
    let topology_spread_constraints = p.spread_topology_key.map(|key| {
        vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            }),
            ..TopologySpreadConstraint::default()
        }]
    });
    let data_claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: p.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(p.storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    StatefulSet {
        metadata: object_meta(p.names, name.clone(), p.component, p.owner),
        spec: Some(StatefulSetSpec {
            replicas: Some(p.replicas),
            service_name: Some(name),
            // Every member must be up before any can serve (a quorum for coordinators, the
            // controller for brokers), so ordered start-up would wait on itself.
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(BTreeMap::from([(
                        "strata.dev/config-hash".to_string(),
                        p.config_hash,
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    init_containers,
                    containers: vec![container],
                    volumes: Some(volumes),
                    service_account_name: p.service_account,
                    automount_service_account_token: Some(false),
                    // Brokers and coordinators find each other by DNS; a Service
                    // environment variable per Service in the namespace is only noise.
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS_USER),
                        run_as_group: Some(RUN_AS_USER),
                        fs_group: Some(RUN_AS_USER),
                        ..PodSecurityContext::default()
                    }),
                    topology_spread_constraints,
                    termination_grace_period_seconds: Some(60),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![data_claim]),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

/// The environment variable `name` set from a pod field (downward API), e.g.
/// `spec.nodeName`.
pub fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// Every container: no privilege escalation, nothing written outside its volumes, no
/// capabilities (none of the programs needs one).
pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(k8s_openapi::api::core::v1::Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        ..SecurityContext::default()
    }
}

/// Helper for the test modules: the pod template's spec of a StatefulSet.
#[cfg(test)]
pub fn pod_spec(sts: &StatefulSet) -> &PodSpec {
    sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

/// Helper for the test modules: the single container of a StatefulSet.
#[cfg(test)]
pub fn container(sts: &StatefulSet) -> &Container {
    &pod_spec(sts).containers[0]
}

/// Adds an annotation to the pod template: a new value is a new revision.
pub fn annotate_template(sts: &mut StatefulSet, key: &str, value: &str) {
    if let Some(meta) = sts.spec.as_mut().and_then(|s| s.template.metadata.as_mut()) {
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_string(), value.to_string());
    }
}

/// `RollingUpdate` (the StatefulSet controller restarts pods) or `OnDelete` (the operator
/// does, by deleting them).
pub fn set_update_strategy(sts: &mut StatefulSet, strategy: &str) {
    if let Some(spec) = sts.spec.as_mut() {
        spec.update_strategy = Some(StatefulSetUpdateStrategy {
            type_: Some(strategy.to_string()),
            rolling_update: None,
        });
    }
}
