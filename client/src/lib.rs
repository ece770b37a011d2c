//! strata-client: a small async Kafka client over the Kafka wire protocol.
//!
//! Layers, bottom up:
//! - [`connection`]: one TCP connection to one broker (framing, headers, ApiVersions).
//! - [`cluster`]: bootstrap, Metadata, a connection per broker, leader routing.
//! - [`admin`], [`producer`], [`consumer`]: what applications use.
//! - [`group_admin`] (consumer group administration on [`Admin`]) and
//!   [`group_consumer`] (a consumer that is a member of a group), with the consumer
//!   protocol and its assignors in [`assignor`].
//!
//! The client never prints; everything it has to say is in its return values and
//! [`Error`].

pub mod admin;
pub mod assignor;
pub mod batch;
pub mod cluster;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod group_admin;
pub mod group_consumer;
pub mod partitioner;
pub mod producer;
pub mod versions;

pub use admin::{
    Admin, AlterConfig, ClusterDescription, ConfigEntry, NewTopic, OngoingReassignment,
    TopicDescription,
};
pub use assignor::Assignor;
pub use cluster::{
    ClientConfig, Cluster, ClusterMetadata, PartitionMetadata, TopicMetadata, topic_id_string,
};
pub use connection::{Connection, ConnectionConfig};
pub use consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, OffsetSpec, TopicPartition,
};
pub use error::{Error, Result, kafka_error_name};
pub use group_admin::{
    GroupDescription, GroupListing, GroupOffsets, MemberDescription, OffsetResetTarget,
    PartitionLag,
};
pub use group_consumer::{GroupConsumer, GroupConsumerConfig};
pub use kafka_protocol::ResponseError;
pub use kafka_protocol::records::{Compression, TimestampType};
pub use partitioner::Partitioner;
pub use producer::{Acks, ProduceAck, Producer, ProducerConfig, ProducerRecord};
pub use uuid::Uuid;
