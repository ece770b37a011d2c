//! strata-coordinator: ZooKeeper rebuilt in Rust.
//!
//! A request flows one way: client connection ([`server`]) → jute decoding ([`proto`])
//! → a transaction ([`txn`]) → durable log ([`storage`]) → [`tree::DataTree`], with
//! watches ([`watch`]) turning tree changes into client notifications. Replication
//! between servers is the ZAB core in [`zab`], a pure state machine.

pub mod acl;
pub mod client;
pub mod config;
pub mod ensemble;
pub mod jute;
pub mod proto;
pub mod server;
pub mod storage;
pub mod tree;
pub mod txn;
pub mod watch;
pub mod zab;
