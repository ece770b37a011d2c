//! The StatefulSet shape both roles share: stable pod names for stable identities
//! (`broker.id`, `myid`), one PersistentVolumeClaim per pod, configuration from a ConfigMap.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource, ObjectFieldSelector,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, SecurityContext, TCPSocketAction, TopologySpreadConstraint, Volume, VolumeMount,
    VolumeResourceRequirements,
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
/// The runtime image's unprivileged user (see the Dockerfile).
const RUN_AS_USER: i64 = 10001;

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
    /// The port whose TCP accept makes the pod ready.
    pub ready_port: i32,
    pub storage: &'a StorageSpec,
    pub resources: Option<&'a Resources>,
    pub config_hash: String,
    pub spread_topology_key: Option<&'a str>,
    pub extra_volumes: Vec<(Volume, VolumeMount)>,
}

pub fn build(p: StatefulSetParams<'_>) -> StatefulSet {
    let name = p.names.component(p.component);
    let labels = p.names.labels(p.component);
    let mut volumes = vec![Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: p.names.config_map(p.component),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
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
    ];
    for (volume, mount) in p.extra_volumes {
        volumes.push(volume);
        mounts.push(mount);
    }
    let field_env = |name: &str, path: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
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
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(p.ready_port),
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(5),
            ..Probe::default()
        }),
        resources: resource_requirements(p.resources),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
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
                    containers: vec![container],
                    volumes: Some(volumes),
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

/// Helper for the test modules: the single container of a StatefulSet.
#[cfg(test)]
pub fn container(sts: &StatefulSet) -> &Container {
    &sts.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
}
