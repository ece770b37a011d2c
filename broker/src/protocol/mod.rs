//! Codecs for the controller-to-broker requests of Kafka's ZooKeeper mode.
//!
//! LeaderAndIsr (4), StopReplica (5), UpdateMetadata (6) and ControlledShutdown (7) left
//! Kafka's message definitions with ZooKeeper in Kafka 4.0, and with them the
//! `kafka-protocol` crate, which follows those definitions. Strata's controller and brokers
//! still speak them — to each other and to Apache Kafka 3.9 brokers in the same cluster —
//! so they are encoded here, field for field from Kafka 3.9's JSON schemas
//! (`clients/src/main/resources/common/message/*.json`).
//!
//! Only the *flexible* versions are implemented: LeaderAndIsr v4–7, UpdateMetadata v6–8,
//! StopReplica v3–4 and ControlledShutdown v3. A Kafka 3.9 controller sends v7/v8/v4 (every
//! inter-broker protocol version from 3.4 on), Strata's controller sends the same, and a
//! Kafka 3.9 broker asks for controlled shutdown with v3; older versions belong to
//! inter-broker protocols before 2.6, which a cluster with a 3.9 broker cannot run.

mod inter_broker;
mod wire;

pub use inter_broker::*;
pub use wire::{WireError, WireReader, WireWriter};
