//! strata-operator: runs Strata on Kubernetes.
//!
//! - [`crd`]: the `KafkaCluster`, `Topic` and `ConsumerGroup` resources (the CRDs are
//!   generated from these types);
//! - [`validate`]: spec checks the schema cannot express (pure);
//! - [`resources`]: the StatefulSets, Services, ConfigMaps and PDBs a cluster becomes (pure);
//! - [`controller`]: the reconcilers that read, validate, build, apply and report status;
//! - [`kafka`]: what the topic and group controllers need from the brokers;
//! - [`rebalance`]: the reassignment plan for scale-up and for draining brokers (pure);
//! - [`membership`]: the coordinator ensemble's next reconfiguration step when it grows
//!   or shrinks (pure);
//! - [`roller`]: the next step of an ISR-safe rolling restart of brokers and coordinators
//!   (pure);
//! - [`events`]: Kubernetes Events, a repeated one counted into a series;
//! - [`metrics`]: `/metrics`, `/healthz`, `/readyz`;
//! - [`probe`] and [`rack`]: what the operator binary does inside broker and coordinator
//!   pods (readiness checks, the rack lookup of the brokers' init container).

pub mod controller;
pub mod crd;
pub mod events;
pub mod kafka;
pub mod membership;
pub mod metrics;
pub mod probe;
pub mod rack;
pub mod rebalance;
pub mod resources;
pub mod roller;
pub mod run;
pub mod validate;
