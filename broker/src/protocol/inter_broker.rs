//! LeaderAndIsr, StopReplica, UpdateMetadata and ControlledShutdown, requests and
//! responses, in their flexible versions (see the module documentation of
//! [`crate::protocol`]). Field names and order follow Kafka 3.9's schemas.

use bytes::{Bytes, BytesMut};
use uuid::Uuid;

use super::wire::{Result, WireError, WireReader, WireWriter};

pub const LEADER_AND_ISR_KEY: i16 = 4;
pub const STOP_REPLICA_KEY: i16 = 5;
pub const UPDATE_METADATA_KEY: i16 = 6;
pub const CONTROLLED_SHUTDOWN_KEY: i16 = 7;

/// Versions served and sent (the flexible ones).
pub const LEADER_AND_ISR_VERSIONS: (i16, i16) = (4, 7);
pub const STOP_REPLICA_VERSIONS: (i16, i16) = (3, 4);
pub const UPDATE_METADATA_VERSIONS: (i16, i16) = (6, 8);
pub const CONTROLLED_SHUTDOWN_VERSIONS: (i16, i16) = (3, 3);

fn check(api: &'static str, version: i16, range: (i16, i16)) -> Result<()> {
    if (range.0..=range.1).contains(&version) {
        Ok(())
    } else {
        Err(WireError::UnsupportedVersion { api, version })
    }
}

/// The values of the request `Type` field of LeaderAndIsr (v5+) and UpdateMetadata (v8+).
pub mod request_type {
    /// Only the partitions in the request changed.
    pub const INCREMENTAL: i8 = 0;
    /// The request carries every partition the broker hosts (KRaft migration only).
    pub const FULL: i8 = 1;
}

// ---------------------------------------------------------------------------------------
// LeaderAndIsr

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderAndIsrRequest {
    pub controller_id: i32,
    /// v7+: the sender is a KRaft controller during a migration. Always false here.
    pub is_kraft_controller: bool,
    pub controller_epoch: i32,
    pub broker_epoch: i64,
    /// v5+: [`request_type`].
    pub request_type: i8,
    pub topic_states: Vec<LeaderAndIsrTopicState>,
    pub live_leaders: Vec<LiveLeader>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderAndIsrTopicState {
    pub topic_name: String,
    /// v5+.
    pub topic_id: Uuid,
    pub partition_states: Vec<LeaderAndIsrPartitionState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderAndIsrPartitionState {
    pub partition_index: i32,
    pub controller_epoch: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    /// The zkVersion of the partition's state znode.
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    /// The replica should not have existed on the broker before (a new topic).
    pub is_new: bool,
    /// v6+: 1 after an unclean election until the new leader has recovered.
    pub leader_recovery_state: i8,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveLeader {
    pub broker_id: i32,
    pub host_name: String,
    pub port: i32,
}

impl LeaderAndIsrRequest {
    pub fn encode(&self, version: i16) -> Result<BytesMut> {
        check("LeaderAndIsr", version, LEADER_AND_ISR_VERSIONS)?;
        let mut w = WireWriter::new();
        w.i32(self.controller_id);
        if version >= 7 {
            w.bool(self.is_kraft_controller);
        }
        w.i32(self.controller_epoch);
        w.i64(self.broker_epoch);
        if version >= 5 {
            w.i8(self.request_type);
        }
        w.array(&self.topic_states, |w, t| {
            w.string(&t.topic_name);
            if version >= 5 {
                w.uuid(t.topic_id);
            }
            w.array(&t.partition_states, |w, p| {
                w.i32(p.partition_index);
                w.i32(p.controller_epoch);
                w.i32(p.leader);
                w.i32(p.leader_epoch);
                w.i32_array(&p.isr);
                w.i32(p.partition_epoch);
                w.i32_array(&p.replicas);
                w.i32_array(&p.adding_replicas);
                w.i32_array(&p.removing_replicas);
                w.bool(p.is_new);
                if version >= 6 {
                    w.i8(p.leader_recovery_state);
                }
                w.no_tagged_fields();
            });
            w.no_tagged_fields();
        });
        w.array(&self.live_leaders, |w, l| {
            w.i32(l.broker_id);
            w.string(&l.host_name);
            w.i32(l.port);
            w.no_tagged_fields();
        });
        w.no_tagged_fields();
        Ok(w.into_bytes())
    }

    pub fn decode(buf: Bytes, version: i16) -> Result<LeaderAndIsrRequest> {
        check("LeaderAndIsr", version, LEADER_AND_ISR_VERSIONS)?;
        let mut r = WireReader::new(buf);
        let controller_id = r.i32()?;
        let is_kraft_controller = if version >= 7 { r.bool()? } else { false };
        let controller_epoch = r.i32()?;
        let broker_epoch = r.i64()?;
        let request_type = if version >= 5 { r.i8()? } else { 0 };
        let topic_states = r.array(|r| {
            let topic_name = r.string()?;
            let topic_id = if version >= 5 { r.uuid()? } else { Uuid::nil() };
            let partition_states = r.array(|r| {
                let p = LeaderAndIsrPartitionState {
                    partition_index: r.i32()?,
                    controller_epoch: r.i32()?,
                    leader: r.i32()?,
                    leader_epoch: r.i32()?,
                    isr: r.i32_array()?,
                    partition_epoch: r.i32()?,
                    replicas: r.i32_array()?,
                    adding_replicas: r.i32_array()?,
                    removing_replicas: r.i32_array()?,
                    is_new: r.bool()?,
                    leader_recovery_state: if version >= 6 { r.i8()? } else { 0 },
                };
                r.tagged_fields()?;
                Ok(p)
            })?;
            r.tagged_fields()?;
            Ok(LeaderAndIsrTopicState {
                topic_name,
                topic_id,
                partition_states,
            })
        })?;
        let live_leaders = r.array(|r| {
            let l = LiveLeader {
                broker_id: r.i32()?,
                host_name: r.string()?,
                port: r.i32()?,
            };
            r.tagged_fields()?;
            Ok(l)
        })?;
        r.tagged_fields()?;
        Ok(LeaderAndIsrRequest {
            controller_id,
            is_kraft_controller,
            controller_epoch,
            broker_epoch,
            request_type,
            topic_states,
            live_leaders,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionError {
    pub topic_name: String,
    pub partition_index: i32,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderAndIsrResponse {
    pub error_code: i16,
    /// Per partition. v4 carries the topic name of each; v5+ groups them by topic id, so
    /// encoding needs `topic_ids` and decoding fills `topic_name` from it when known.
    pub partition_errors: Vec<PartitionError>,
}

impl LeaderAndIsrResponse {
    pub fn encode(&self, version: i16, topic_id: impl Fn(&str) -> Uuid) -> Result<BytesMut> {
        check("LeaderAndIsr", version, LEADER_AND_ISR_VERSIONS)?;
        let mut w = WireWriter::new();
        w.i16(self.error_code);
        if version >= 5 {
            let mut topics: Vec<(Uuid, Vec<&PartitionError>)> = Vec::new();
            for e in &self.partition_errors {
                let id = topic_id(&e.topic_name);
                match topics.iter_mut().find(|(t, _)| *t == id) {
                    Some((_, v)) => v.push(e),
                    None => topics.push((id, vec![e])),
                }
            }
            w.array(&topics, |w, (id, errors)| {
                w.uuid(*id);
                w.array(errors, |w, e| {
                    w.i32(e.partition_index);
                    w.i16(e.error_code);
                    w.no_tagged_fields();
                });
                w.no_tagged_fields();
            });
        } else {
            w.array(&self.partition_errors, |w, e| {
                w.string(&e.topic_name);
                w.i32(e.partition_index);
                w.i16(e.error_code);
                w.no_tagged_fields();
            });
        }
        w.no_tagged_fields();
        Ok(w.into_bytes())
    }

    pub fn decode(
        buf: Bytes,
        version: i16,
        topic_name: impl Fn(Uuid) -> Option<String>,
    ) -> Result<LeaderAndIsrResponse> {
        check("LeaderAndIsr", version, LEADER_AND_ISR_VERSIONS)?;
        let mut r = WireReader::new(buf);
        let error_code = r.i16()?;
        let partition_errors = if version >= 5 {
            let topics = r.array(|r| {
                let id = r.uuid()?;
                let name = topic_name(id).unwrap_or_default();
                let errors = r.array(|r| {
                    let e = PartitionError {
                        topic_name: name.clone(),
                        partition_index: r.i32()?,
                        error_code: r.i16()?,
                    };
                    r.tagged_fields()?;
                    Ok(e)
                })?;
                r.tagged_fields()?;
                Ok(errors)
            })?;
            topics.into_iter().flatten().collect()
        } else {
            r.array(|r| {
                let e = PartitionError {
                    topic_name: r.string()?,
                    partition_index: r.i32()?,
                    error_code: r.i16()?,
                };
                r.tagged_fields()?;
                Ok(e)
            })?
        };
        r.tagged_fields()?;
        Ok(LeaderAndIsrResponse {
            error_code,
            partition_errors,
        })
    }
}

// ---------------------------------------------------------------------------------------
// UpdateMetadata

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateMetadataRequest {
    pub controller_id: i32,
    /// v8+.
    pub is_kraft_controller: bool,
    /// v8+, a tagged field (tag 0): [`request_type`].
    pub request_type: i8,
    pub controller_epoch: i32,
    pub broker_epoch: i64,
    pub topic_states: Vec<UpdateMetadataTopicState>,
    pub live_brokers: Vec<UpdateMetadataBroker>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateMetadataTopicState {
    pub topic_name: String,
    /// v7+.
    pub topic_id: Uuid,
    pub partition_states: Vec<UpdateMetadataPartitionState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateMetadataPartitionState {
    pub partition_index: i32,
    pub controller_epoch: i32,
    /// -1 without a leader; -2 (`LeaderDuringDelete`) while the topic is being deleted.
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub zk_version: i32,
    pub replicas: Vec<i32>,
    pub offline_replicas: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateMetadataBroker {
    pub id: i32,
    pub endpoints: Vec<UpdateMetadataEndpoint>,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateMetadataEndpoint {
    pub port: i32,
    pub host: String,
    pub listener: String,
    pub security_protocol: i16,
}

impl UpdateMetadataRequest {
    pub fn encode(&self, version: i16) -> Result<BytesMut> {
        check("UpdateMetadata", version, UPDATE_METADATA_VERSIONS)?;
        let mut w = WireWriter::new();
        w.i32(self.controller_id);
        if version >= 8 {
            w.bool(self.is_kraft_controller);
        }
        w.i32(self.controller_epoch);
        w.i64(self.broker_epoch);
        w.array(&self.topic_states, |w, t| {
            w.string(&t.topic_name);
            if version >= 7 {
                w.uuid(t.topic_id);
            }
            w.array(&t.partition_states, |w, p| {
                w.i32(p.partition_index);
                w.i32(p.controller_epoch);
                w.i32(p.leader);
                w.i32(p.leader_epoch);
                w.i32_array(&p.isr);
                w.i32(p.zk_version);
                w.i32_array(&p.replicas);
                w.i32_array(&p.offline_replicas);
                w.no_tagged_fields();
            });
            w.no_tagged_fields();
        });
        w.array(&self.live_brokers, |w, b| {
            w.i32(b.id);
            w.array(&b.endpoints, |w, e| {
                w.i32(e.port);
                w.string(&e.host);
                w.string(&e.listener);
                w.i16(e.security_protocol);
                w.no_tagged_fields();
            });
            w.nullable_string(b.rack.as_deref());
            w.no_tagged_fields();
        });
        if version >= 8 && self.request_type != 0 {
            w.tagged_fields(&[(0, &[self.request_type as u8])]);
        } else {
            w.no_tagged_fields();
        }
        Ok(w.into_bytes())
    }

    pub fn decode(buf: Bytes, version: i16) -> Result<UpdateMetadataRequest> {
        check("UpdateMetadata", version, UPDATE_METADATA_VERSIONS)?;
        let mut r = WireReader::new(buf);
        let controller_id = r.i32()?;
        let is_kraft_controller = if version >= 8 { r.bool()? } else { false };
        let controller_epoch = r.i32()?;
        let broker_epoch = r.i64()?;
        let topic_states = r.array(|r| {
            let topic_name = r.string()?;
            let topic_id = if version >= 7 { r.uuid()? } else { Uuid::nil() };
            let partition_states = r.array(|r| {
                let p = UpdateMetadataPartitionState {
                    partition_index: r.i32()?,
                    controller_epoch: r.i32()?,
                    leader: r.i32()?,
                    leader_epoch: r.i32()?,
                    isr: r.i32_array()?,
                    zk_version: r.i32()?,
                    replicas: r.i32_array()?,
                    offline_replicas: r.i32_array()?,
                };
                r.tagged_fields()?;
                Ok(p)
            })?;
            r.tagged_fields()?;
            Ok(UpdateMetadataTopicState {
                topic_name,
                topic_id,
                partition_states,
            })
        })?;
        let live_brokers = r.array(|r| {
            let id = r.i32()?;
            let endpoints = r.array(|r| {
                let e = UpdateMetadataEndpoint {
                    port: r.i32()?,
                    host: r.string()?,
                    listener: r.string()?,
                    security_protocol: r.i16()?,
                };
                r.tagged_fields()?;
                Ok(e)
            })?;
            let rack = r.nullable_string()?;
            r.tagged_fields()?;
            Ok(UpdateMetadataBroker {
                id,
                endpoints,
                rack,
            })
        })?;
        let mut request_type = 0;
        for (tag, bytes) in r.tagged_fields()? {
            if tag == 0 && version >= 8 && !bytes.is_empty() {
                request_type = bytes[0] as i8;
            }
        }
        Ok(UpdateMetadataRequest {
            controller_id,
            is_kraft_controller,
            request_type,
            controller_epoch,
            broker_epoch,
            topic_states,
            live_brokers,
        })
    }
}

/// The response of UpdateMetadata is an error code alone.
pub fn encode_error_only_response(
    api: &'static str,
    version: i16,
    range: (i16, i16),
    error_code: i16,
) -> Result<BytesMut> {
    check(api, version, range)?;
    let mut w = WireWriter::new();
    w.i16(error_code);
    w.no_tagged_fields();
    Ok(w.into_bytes())
}

pub fn decode_error_only_response(
    api: &'static str,
    buf: Bytes,
    version: i16,
    range: (i16, i16),
) -> Result<i16> {
    check(api, version, range)?;
    let mut r = WireReader::new(buf);
    let code = r.i16()?;
    r.tagged_fields()?;
    Ok(code)
}

// ---------------------------------------------------------------------------------------
// StopReplica

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopReplicaRequest {
    pub controller_id: i32,
    /// v4+.
    pub is_kraft_controller: bool,
    pub controller_epoch: i32,
    pub broker_epoch: i64,
    pub topic_states: Vec<StopReplicaTopicState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopReplicaTopicState {
    pub topic_name: String,
    pub partition_states: Vec<StopReplicaPartitionState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopReplicaPartitionState {
    pub partition_index: i32,
    /// -1: no epoch check; -2 (`EpochDuringDelete`): the topic is being deleted.
    pub leader_epoch: i32,
    pub delete_partition: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopReplicaResponse {
    pub error_code: i16,
    pub partition_errors: Vec<PartitionError>,
}

impl StopReplicaRequest {
    pub fn encode(&self, version: i16) -> Result<BytesMut> {
        check("StopReplica", version, STOP_REPLICA_VERSIONS)?;
        let mut w = WireWriter::new();
        w.i32(self.controller_id);
        if version >= 4 {
            w.bool(self.is_kraft_controller);
        }
        w.i32(self.controller_epoch);
        w.i64(self.broker_epoch);
        w.array(&self.topic_states, |w, t| {
            w.string(&t.topic_name);
            w.array(&t.partition_states, |w, p| {
                w.i32(p.partition_index);
                w.i32(p.leader_epoch);
                w.bool(p.delete_partition);
                w.no_tagged_fields();
            });
            w.no_tagged_fields();
        });
        w.no_tagged_fields();
        Ok(w.into_bytes())
    }

    pub fn decode(buf: Bytes, version: i16) -> Result<StopReplicaRequest> {
        check("StopReplica", version, STOP_REPLICA_VERSIONS)?;
        let mut r = WireReader::new(buf);
        let controller_id = r.i32()?;
        let is_kraft_controller = if version >= 4 { r.bool()? } else { false };
        let controller_epoch = r.i32()?;
        let broker_epoch = r.i64()?;
        let topic_states = r.array(|r| {
            let topic_name = r.string()?;
            let partition_states = r.array(|r| {
                let p = StopReplicaPartitionState {
                    partition_index: r.i32()?,
                    leader_epoch: r.i32()?,
                    delete_partition: r.bool()?,
                };
                r.tagged_fields()?;
                Ok(p)
            })?;
            r.tagged_fields()?;
            Ok(StopReplicaTopicState {
                topic_name,
                partition_states,
            })
        })?;
        r.tagged_fields()?;
        Ok(StopReplicaRequest {
            controller_id,
            is_kraft_controller,
            controller_epoch,
            broker_epoch,
            topic_states,
        })
    }
}

impl StopReplicaResponse {
    pub fn encode(&self, version: i16) -> Result<BytesMut> {
        check("StopReplica", version, STOP_REPLICA_VERSIONS)?;
        let mut w = WireWriter::new();
        w.i16(self.error_code);
        write_topic_partition_errors(&mut w, &self.partition_errors);
        w.no_tagged_fields();
        Ok(w.into_bytes())
    }

    pub fn decode(buf: Bytes, version: i16) -> Result<StopReplicaResponse> {
        check("StopReplica", version, STOP_REPLICA_VERSIONS)?;
        let mut r = WireReader::new(buf);
        let error_code = r.i16()?;
        let partition_errors = read_topic_partition_errors(&mut r)?;
        r.tagged_fields()?;
        Ok(StopReplicaResponse {
            error_code,
            partition_errors,
        })
    }
}

fn write_topic_partition_errors(w: &mut WireWriter, errors: &[PartitionError]) {
    w.array(errors, |w, e| {
        w.string(&e.topic_name);
        w.i32(e.partition_index);
        w.i16(e.error_code);
        w.no_tagged_fields();
    });
}

fn read_topic_partition_errors(r: &mut WireReader) -> Result<Vec<PartitionError>> {
    r.array(|r| {
        let e = PartitionError {
            topic_name: r.string()?,
            partition_index: r.i32()?,
            error_code: r.i16()?,
        };
        r.tagged_fields()?;
        Ok(e)
    })
}

// ---------------------------------------------------------------------------------------
// ControlledShutdown

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControlledShutdownRequest {
    pub broker_id: i32,
    pub broker_epoch: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControlledShutdownResponse {
    pub error_code: i16,
    /// Partitions the broker still leads (topic, partition).
    pub remaining_partitions: Vec<(String, i32)>,
}

impl ControlledShutdownRequest {
    pub fn encode(&self, version: i16) -> Result<BytesMut> {
        check("ControlledShutdown", version, CONTROLLED_SHUTDOWN_VERSIONS)?;
        let mut w = WireWriter::new();
        w.i32(self.broker_id);
        w.i64(self.broker_epoch);
        w.no_tagged_fields();
        Ok(w.into_bytes())
    }

    pub fn decode(buf: Bytes, version: i16) -> Result<ControlledShutdownRequest> {
        check("ControlledShutdown", version, CONTROLLED_SHUTDOWN_VERSIONS)?;
        let mut r = WireReader::new(buf);
        let request = ControlledShutdownRequest {
            broker_id: r.i32()?,
            broker_epoch: r.i64()?,
        };
        r.tagged_fields()?;
        Ok(request)
    }
}

impl ControlledShutdownResponse {
    pub fn encode(&self, version: i16) -> Result<BytesMut> {
        check("ControlledShutdown", version, CONTROLLED_SHUTDOWN_VERSIONS)?;
        let mut w = WireWriter::new();
        w.i16(self.error_code);
        w.array(&self.remaining_partitions, |w, (topic, partition)| {
            w.string(topic);
            w.i32(*partition);
            w.no_tagged_fields();
        });
        w.no_tagged_fields();
        Ok(w.into_bytes())
    }

    pub fn decode(buf: Bytes, version: i16) -> Result<ControlledShutdownResponse> {
        check("ControlledShutdown", version, CONTROLLED_SHUTDOWN_VERSIONS)?;
        let mut r = WireReader::new(buf);
        let error_code = r.i16()?;
        let remaining_partitions = r.array(|r| {
            let p = (r.string()?, r.i32()?);
            r.tagged_fields()?;
            Ok(p)
        })?;
        r.tagged_fields()?;
        Ok(ControlledShutdownResponse {
            error_code,
            remaining_partitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader_and_isr() -> LeaderAndIsrRequest {
        LeaderAndIsrRequest {
            controller_id: 1,
            is_kraft_controller: false,
            controller_epoch: 7,
            broker_epoch: 4294967319,
            request_type: 0,
            topic_states: vec![LeaderAndIsrTopicState {
                topic_name: "orders".into(),
                topic_id: Uuid::from_u128(0x1234),
                partition_states: vec![LeaderAndIsrPartitionState {
                    partition_index: 2,
                    controller_epoch: 7,
                    leader: 3,
                    leader_epoch: 5,
                    isr: vec![3, 1],
                    partition_epoch: 9,
                    replicas: vec![3, 1, 2],
                    adding_replicas: vec![],
                    removing_replicas: vec![2],
                    is_new: true,
                    leader_recovery_state: 0,
                }],
            }],
            live_leaders: vec![LiveLeader {
                broker_id: 3,
                host_name: "127.0.0.3".into(),
                port: 9092,
            }],
        }
    }

    #[test]
    fn every_version_round_trips() {
        let request = leader_and_isr();
        for v in 5..=7 {
            let bytes = request.encode(v).unwrap().freeze();
            assert_eq!(
                LeaderAndIsrRequest::decode(bytes, v).unwrap(),
                request,
                "v{v}"
            );
        }
        let update = UpdateMetadataRequest {
            controller_id: 1,
            is_kraft_controller: false,
            request_type: 0,
            controller_epoch: 7,
            broker_epoch: 3,
            topic_states: vec![UpdateMetadataTopicState {
                topic_name: "orders".into(),
                topic_id: Uuid::from_u128(9),
                partition_states: vec![UpdateMetadataPartitionState {
                    partition_index: 0,
                    controller_epoch: 7,
                    leader: 1,
                    leader_epoch: 2,
                    isr: vec![1],
                    zk_version: 4,
                    replicas: vec![1, 2],
                    offline_replicas: vec![2],
                }],
            }],
            live_brokers: vec![UpdateMetadataBroker {
                id: 1,
                endpoints: vec![UpdateMetadataEndpoint {
                    port: 9092,
                    host: "h".into(),
                    listener: "PLAINTEXT".into(),
                    security_protocol: 0,
                }],
                rack: Some("r1".into()),
            }],
        };
        for v in 7..=8 {
            let bytes = update.encode(v).unwrap().freeze();
            assert_eq!(UpdateMetadataRequest::decode(bytes, v).unwrap(), update);
        }
        let stop = StopReplicaRequest {
            controller_id: 1,
            is_kraft_controller: false,
            controller_epoch: 7,
            broker_epoch: 3,
            topic_states: vec![StopReplicaTopicState {
                topic_name: "t".into(),
                partition_states: vec![StopReplicaPartitionState {
                    partition_index: 1,
                    leader_epoch: -2,
                    delete_partition: true,
                }],
            }],
        };
        for v in 3..=4 {
            let bytes = stop.encode(v).unwrap().freeze();
            assert_eq!(StopReplicaRequest::decode(bytes, v).unwrap(), stop);
        }
        let shutdown = ControlledShutdownRequest {
            broker_id: 2,
            broker_epoch: 99,
        };
        let bytes = shutdown.encode(3).unwrap().freeze();
        assert_eq!(
            ControlledShutdownRequest::decode(bytes, 3).unwrap(),
            shutdown
        );
        let remaining = ControlledShutdownResponse {
            error_code: 0,
            remaining_partitions: vec![("t".into(), 3)],
        };
        let bytes = remaining.encode(3).unwrap().freeze();
        assert_eq!(
            ControlledShutdownResponse::decode(bytes, 3).unwrap(),
            remaining
        );
    }

    #[test]
    fn leader_and_isr_response_groups_by_topic_id_from_v5() {
        let response = LeaderAndIsrResponse {
            error_code: 0,
            partition_errors: vec![
                PartitionError {
                    topic_name: "a".into(),
                    partition_index: 0,
                    error_code: 0,
                },
                PartitionError {
                    topic_name: "a".into(),
                    partition_index: 1,
                    error_code: 56,
                },
            ],
        };
        let id = Uuid::from_u128(5);
        let bytes = response.encode(7, |_| id).unwrap().freeze();
        let decoded =
            LeaderAndIsrResponse::decode(bytes, 7, |u| (u == id).then(|| "a".to_string())).unwrap();
        assert_eq!(decoded, response);
        assert!(leader_and_isr().encode(3).is_err());
        assert!(LeaderAndIsrRequest::decode(Bytes::from_static(&[0, 0]), 7).is_err());
    }
}
