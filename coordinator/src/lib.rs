//! strata-coordinator: ZooKeeper rebuilt in Rust.
//!
//! A request flows one way: client connection ([`server`]) → jute decoding ([`proto`])
//! → a transaction ([`txn`]) proposed to [`replication`] → ordered by the ZAB core
//! ([`zab`], a pure state machine, driven with its log ([`storage`]) and peers by
//! [`ensemble`]) → committed back to the processor → [`tree::DataTree`], with watches
//! ([`watch`]) turning tree changes into client notifications. A standalone server is
//! an ensemble of one voter: there is one write path.

pub mod acl;
pub mod client;
pub mod config;
pub mod ensemble;
pub mod jute;
pub mod proto;
pub mod reconfig;
pub mod replication;
pub mod server;
pub mod storage;
pub mod tree;
pub mod txn;
pub mod watch;
pub mod zab;
