//! The JSON documents Kafka keeps in ZooKeeper, written and read exactly as Kafka 3.9's
//! `ZkData.scala` does, so a Strata broker and an Apache Kafka broker can share one
//! ensemble. Reading is lenient the way Kafka's is: unknown fields are ignored and older
//! versions of a document are accepted.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    BrokerEndpoint, BrokerRegistration, LeaderAndIsr, PartitionState, ReplicaAssignment,
    SecurityProtocol, TopicPartition,
};

/// A document that does not parse: which one and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what}: {reason}")]
pub struct JsonError {
    pub what: &'static str,
    pub reason: String,
}

fn parse(what: &'static str, bytes: &[u8]) -> Result<Value, JsonError> {
    serde_json::from_slice(bytes).map_err(|e| JsonError {
        what,
        reason: e.to_string(),
    })
}

fn field<'a>(what: &'static str, v: &'a Value, key: &str) -> Result<&'a Value, JsonError> {
    v.get(key).ok_or_else(|| JsonError {
        what,
        reason: format!("missing \"{key}\""),
    })
}

fn int(what: &'static str, v: &Value, key: &str) -> Result<i64, JsonError> {
    let value = field(what, v, key)?;
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| JsonError {
            what,
            reason: format!("\"{key}\" is not a number"),
        })
}

fn int_list(what: &'static str, v: &Value) -> Result<Vec<i32>, JsonError> {
    v.as_array()
        .ok_or_else(|| JsonError {
            what,
            reason: "expected a list of broker ids".into(),
        })?
        .iter()
        .map(|x| {
            x.as_i64().map(|i| i as i32).ok_or_else(|| JsonError {
                what,
                reason: "broker id is not a number".into(),
            })
        })
        .collect()
}

/// `/cluster/id`.
pub fn encode_cluster_id(id: &str) -> Vec<u8> {
    json!({"version": "1", "id": id}).to_string().into_bytes()
}

pub fn decode_cluster_id(bytes: &[u8]) -> Result<String, JsonError> {
    let v = parse("/cluster/id", bytes)?;
    field("/cluster/id", &v, "id")?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| JsonError {
            what: "/cluster/id",
            reason: "\"id\" is not a string".into(),
        })
}

/// `/controller` (version 2, as written by a ZooKeeper-mode controller).
pub fn encode_controller(broker_id: i32, timestamp_ms: i64) -> Vec<u8> {
    json!({
        "version": 2,
        "brokerid": broker_id,
        "timestamp": timestamp_ms.to_string(),
        "kraftControllerEpoch": -1,
    })
    .to_string()
    .into_bytes()
}

pub fn decode_controller(bytes: &[u8]) -> Result<i32, JsonError> {
    let v = parse("/controller", bytes)?;
    Ok(int("/controller", &v, "brokerid")? as i32)
}

/// `/controller_epoch`: the epoch as a decimal string.
pub fn encode_controller_epoch(epoch: i32) -> Vec<u8> {
    epoch.to_string().into_bytes()
}

pub fn decode_controller_epoch(bytes: &[u8]) -> Result<i32, JsonError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| JsonError {
            what: "/controller_epoch",
            reason: format!("not a number: {:?}", String::from_utf8_lossy(bytes)),
        })
}

/// `/brokers/ids/<id>`, version 5 (inter-broker protocol 2.7 and later).
pub fn encode_broker(registration: &BrokerRegistration, timestamp_ms: i64) -> Vec<u8> {
    // The top-level host and port are the first PLAINTEXT endpoint, for old clients;
    // without one Kafka writes null and -1.
    let plaintext = registration
        .endpoints
        .iter()
        .find(|e| e.security_protocol == SecurityProtocol::Plaintext);
    let mut doc = json!({
        "version": 5,
        "host": plaintext.map(|e| e.host.clone()),
        "port": plaintext.map_or(-1, |e| i32::from(e.port)),
        "endpoints": registration
            .endpoints
            .iter()
            .map(|e| format!("{}://{}:{}", e.listener, host_for_url(&e.host), e.port))
            .collect::<Vec<_>>(),
        "jmx_port": -1,
        "timestamp": timestamp_ms.to_string(),
        "listener_security_protocol_map": registration
            .endpoints
            .iter()
            .map(|e| (e.listener.clone(), Value::from(e.security_protocol.name())))
            .collect::<serde_json::Map<_, _>>(),
        "features": {},
    });
    if let Some(rack) = &registration.rack {
        doc["rack"] = Value::from(rack.clone());
    }
    doc.to_string().into_bytes()
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Reads any version (1–5) of a broker registration; `epoch` is the znode's czxid.
pub fn decode_broker(id: i32, bytes: &[u8], epoch: i64) -> Result<BrokerRegistration, JsonError> {
    const WHAT: &str = "broker registration";
    let v = parse(WHAT, bytes)?;
    let version = int(WHAT, &v, "version")?;
    let endpoints = if version <= 1 {
        let host = field(WHAT, &v, "host")?
            .as_str()
            .unwrap_or_default()
            .to_string();
        vec![BrokerEndpoint {
            listener: "PLAINTEXT".into(),
            host,
            port: int(WHAT, &v, "port")? as u16,
            security_protocol: SecurityProtocol::Plaintext,
        }]
    } else {
        let protocols: BTreeMap<String, String> = v
            .get("listener_security_protocol_map")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default();
        let mut endpoints = Vec::new();
        for url in field(WHAT, &v, "endpoints")?
            .as_array()
            .ok_or_else(|| JsonError {
                what: WHAT,
                reason: "\"endpoints\" is not a list".into(),
            })?
        {
            let url = url.as_str().unwrap_or_default();
            let (listener, rest) = url.split_once("://").ok_or_else(|| JsonError {
                what: WHAT,
                reason: format!("bad endpoint {url:?}"),
            })?;
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| JsonError {
                what: WHAT,
                reason: format!("bad endpoint {url:?}"),
            })?;
            let port: u16 = port.parse().map_err(|_| JsonError {
                what: WHAT,
                reason: format!("bad port in {url:?}"),
            })?;
            // Without a map, the listener name is the protocol name (Kafka's default map).
            let protocol_name = protocols
                .get(listener)
                .cloned()
                .unwrap_or_else(|| listener.to_string());
            let security_protocol =
                SecurityProtocol::parse(&protocol_name).ok_or_else(|| JsonError {
                    what: WHAT,
                    reason: format!("unknown security protocol {protocol_name:?}"),
                })?;
            endpoints.push(BrokerEndpoint {
                listener: listener.to_string(),
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port,
                security_protocol,
            });
        }
        endpoints
    };
    let rack = v.get("rack").and_then(Value::as_str).map(str::to_string);
    Ok(BrokerRegistration {
        id,
        endpoints,
        rack,
        epoch,
    })
}

/// `/brokers/topics/<topic>`, version 3.
pub fn encode_topic(topic_id: Uuid, partitions: &BTreeMap<i32, ReplicaAssignment>) -> Vec<u8> {
    let mut replicas = serde_json::Map::new();
    let mut adding = serde_json::Map::new();
    let mut removing = serde_json::Map::new();
    for (p, a) in partitions {
        replicas.insert(p.to_string(), json!(a.replicas));
        if !a.adding_replicas.is_empty() {
            adding.insert(p.to_string(), json!(a.adding_replicas));
        }
        if !a.removing_replicas.is_empty() {
            removing.insert(p.to_string(), json!(a.removing_replicas));
        }
    }
    json!({
        "version": 3,
        "topic_id": kafka_uuid_string(topic_id),
        "partitions": replicas,
        "adding_replicas": adding,
        "removing_replicas": removing,
    })
    .to_string()
    .into_bytes()
}

/// Reads a topic assignment (versions 1–3). A topic written by a Kafka older than 2.8 has
/// no id; the nil UUID stands for that (the controller assigns one).
pub fn decode_topic(bytes: &[u8]) -> Result<(Uuid, BTreeMap<i32, ReplicaAssignment>), JsonError> {
    const WHAT: &str = "topic assignment";
    let v = parse(WHAT, bytes)?;
    let topic_id = match v.get("topic_id").and_then(Value::as_str) {
        Some(s) => parse_kafka_uuid(s).ok_or_else(|| JsonError {
            what: WHAT,
            reason: format!("bad topic id {s:?}"),
        })?,
        None => Uuid::nil(),
    };
    let list = |section: &str, p: &str| -> Result<Vec<i32>, JsonError> {
        match v.get(section).and_then(|s| s.get(p)) {
            Some(l) => int_list(WHAT, l),
            None => Ok(Vec::new()),
        }
    };
    let mut partitions = BTreeMap::new();
    if let Some(map) = v.get("partitions").and_then(Value::as_object) {
        for (p, replicas) in map {
            let index: i32 = p.parse().map_err(|_| JsonError {
                what: WHAT,
                reason: format!("bad partition {p:?}"),
            })?;
            partitions.insert(
                index,
                ReplicaAssignment {
                    replicas: int_list(WHAT, replicas)?,
                    adding_replicas: list("adding_replicas", p)?,
                    removing_replicas: list("removing_replicas", p)?,
                },
            );
        }
    }
    Ok((topic_id, partitions))
}

/// `/brokers/topics/<topic>/partitions/<p>/state`, version 1.
pub fn encode_partition_state(state: &PartitionState) -> Vec<u8> {
    let l = &state.leader_and_isr;
    let mut doc = json!({
        "version": 1,
        "leader": l.leader,
        "leader_epoch": l.leader_epoch,
        "controller_epoch": state.controller_epoch,
        "isr": l.isr,
    });
    if l.leader_recovery_state != 0 {
        doc["leader_recovery_state"] = Value::from(l.leader_recovery_state);
    }
    doc.to_string().into_bytes()
}

/// Reads a partition state; `zk_version` (the znode's version) is its partition epoch.
pub fn decode_partition_state(bytes: &[u8], zk_version: i32) -> Result<PartitionState, JsonError> {
    const WHAT: &str = "partition state";
    let v = parse(WHAT, bytes)?;
    Ok(PartitionState {
        leader_and_isr: LeaderAndIsr {
            leader: int(WHAT, &v, "leader")? as i32,
            leader_epoch: int(WHAT, &v, "leader_epoch")? as i32,
            isr: int_list(WHAT, field(WHAT, &v, "isr")?)?,
            leader_recovery_state: v
                .get("leader_recovery_state")
                .and_then(Value::as_i64)
                .unwrap_or(0) as i8,
            partition_epoch: zk_version,
        },
        controller_epoch: int(WHAT, &v, "controller_epoch")? as i32,
    })
}

/// `/config/<type>/<name>`.
pub fn encode_entity_config(configs: &BTreeMap<String, String>) -> Vec<u8> {
    json!({"version": 1, "config": configs})
        .to_string()
        .into_bytes()
}

pub fn decode_entity_config(bytes: &[u8]) -> Result<BTreeMap<String, String>, JsonError> {
    const WHAT: &str = "entity config";
    if bytes.is_empty() {
        return Ok(BTreeMap::new());
    }
    let v = parse(WHAT, bytes)?;
    let Some(map) = v.get("config").and_then(Value::as_object) else {
        return Ok(BTreeMap::new());
    };
    Ok(map
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), value)
        })
        .collect())
}

/// `/config/changes/config_change_<seq>`, version 2.
pub fn encode_config_change(entity_path: &str) -> Vec<u8> {
    json!({"version": 2, "entity_path": entity_path})
        .to_string()
        .into_bytes()
}

/// The `(entity type, entity name)` a change notification names.
pub fn decode_config_change(bytes: &[u8]) -> Result<(String, String), JsonError> {
    const WHAT: &str = "config change notification";
    let v = parse(WHAT, bytes)?;
    let version = int(WHAT, &v, "version")?;
    if version == 1 {
        let entity_type = field(WHAT, &v, "entity_type")?.as_str().unwrap_or_default();
        let entity_name = field(WHAT, &v, "entity_name")?.as_str().unwrap_or_default();
        return Ok((entity_type.to_string(), entity_name.to_string()));
    }
    let path = field(WHAT, &v, "entity_path")?
        .as_str()
        .ok_or_else(|| JsonError {
            what: WHAT,
            reason: "\"entity_path\" is not a string".into(),
        })?;
    // "users/alice/clients/app" names a nested entity; its type is the path up to the
    // last name.
    let (entity_type, entity_name) = path.rsplit_once('/').ok_or_else(|| JsonError {
        what: WHAT,
        reason: format!("bad entity path {path:?}"),
    })?;
    Ok((entity_type.to_string(), entity_name.to_string()))
}

/// `/isr_change_notification/isr_change_<seq>`.
pub fn encode_isr_change(partitions: &[TopicPartition]) -> Vec<u8> {
    json!({
        "version": 1,
        "partitions": partitions
            .iter()
            .map(|(t, p)| json!({"topic": t, "partition": p}))
            .collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

pub fn decode_isr_change(bytes: &[u8]) -> Result<Vec<TopicPartition>, JsonError> {
    const WHAT: &str = "ISR change notification";
    let v = parse(WHAT, bytes)?;
    let mut out = Vec::new();
    for p in field(WHAT, &v, "partitions")?
        .as_array()
        .into_iter()
        .flatten()
    {
        let topic = field(WHAT, p, "topic")?
            .as_str()
            .unwrap_or_default()
            .to_string();
        out.push((topic, int(WHAT, p, "partition")? as i32));
    }
    Ok(out)
}

/// `/latest_producer_id_block`: the block `[first, first + size)` given to `broker_id`.
pub fn encode_producer_id_block(broker_id: i32, first: i64, size: i32) -> Vec<u8> {
    json!({
        "version": 1,
        "broker": broker_id,
        "block_start": first.to_string(),
        "block_end": (first + i64::from(size) - 1).to_string(),
    })
    .to_string()
    .into_bytes()
}

/// The last id of the block, or `None` for an empty znode (no block handed out yet).
pub fn decode_producer_id_block_end(bytes: &[u8]) -> Result<Option<i64>, JsonError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let v = parse("/latest_producer_id_block", bytes)?;
    Ok(Some(int("/latest_producer_id_block", &v, "block_end")?))
}

/// `/feature`, version 2, enabled, with no finalized features (ZooKeeper mode finalizes
/// none).
pub fn encode_feature_enabled() -> Vec<u8> {
    json!({"version": 2, "status": 1, "features": {}})
        .to_string()
        .into_bytes()
}

/// `/admin/delete_topics/<topic>` holds no data.
pub const NO_DATA: &[u8] = &[];

/// A UUID as Kafka prints it: URL-safe base64 of its 16 bytes, no padding.
pub fn kafka_uuid_string(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Parses Kafka's base64 UUID form.
pub fn parse_kafka_uuid(s: &str) -> Option<Uuid> {
    let mut bytes = Vec::with_capacity(16);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
        }
    }
    Uuid::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documents in the shape Kafka 3.9's `ZkData` writes them (key order as Jackson
    /// emits a Scala map), read back here. The mixed-cluster test checks the real ones.
    #[test]
    fn reads_documents_written_by_kafka() {
        let broker = br#"{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT","INTERNAL":"SSL"},"endpoints":["PLAINTEXT://127.0.0.1:9092","INTERNAL://[::1]:9093"],"jmx_port":-1,"port":9092,"host":"127.0.0.1","version":5,"timestamp":"1733480000000","rack":"rack-a"}"#;
        let b = decode_broker(1, broker, 4294967321).unwrap();
        assert_eq!(b.epoch, 4294967321);
        assert_eq!(b.rack.as_deref(), Some("rack-a"));
        assert_eq!(b.endpoints[0].port, 9092);
        assert_eq!(b.endpoints[1].host, "::1");
        assert_eq!(b.endpoints[1].security_protocol, SecurityProtocol::Ssl);

        let topic = br#"{"partitions":{"0":[1,2,3],"1":[2,3,1]},"topic_id":"uBnSgKY2TFKD7ZQEn6RCpA","adding_replicas":{"1":[3]},"removing_replicas":{},"version":3}"#;
        let (id, partitions) = decode_topic(topic).unwrap();
        assert_eq!(kafka_uuid_string(id), "uBnSgKY2TFKD7ZQEn6RCpA");
        assert_eq!(partitions[&1].adding_replicas, vec![3]);
        assert!(partitions[&0].removing_replicas.is_empty());

        let state =
            br#"{"controller_epoch":3,"leader":2,"version":1,"leader_epoch":7,"isr":[2,1]}"#;
        let s = decode_partition_state(state, 12).unwrap();
        assert_eq!(s.leader_and_isr.leader, 2);
        assert_eq!(s.leader_and_isr.isr, vec![2, 1]);
        assert_eq!(s.leader_and_isr.partition_epoch, 12);
        assert_eq!(s.controller_epoch, 3);

        assert_eq!(
            decode_controller(
                br#"{"version":2,"brokerid":3,"timestamp":"1","kraftControllerEpoch":-1}"#
            )
            .unwrap(),
            3
        );
        assert_eq!(
            decode_config_change(br#"{"version":2,"entity_path":"topics/orders"}"#).unwrap(),
            ("topics".to_string(), "orders".to_string())
        );
        assert_eq!(
            decode_producer_id_block_end(
                br#"{"version":1,"broker":1,"block_start":"1000","block_end":"1999"}"#
            )
            .unwrap(),
            Some(1999)
        );
        assert_eq!(decode_producer_id_block_end(b"").unwrap(), None);
        assert_eq!(
            decode_entity_config(br#"{"version":1,"config":{"retention.ms":"1000"}}"#).unwrap()["retention.ms"],
            "1000"
        );
    }

    #[test]
    fn documents_round_trip() {
        let reg = BrokerRegistration {
            id: 2,
            endpoints: vec![BrokerEndpoint {
                listener: "PLAINTEXT".into(),
                host: "broker-2.kafka".into(),
                port: 9092,
                security_protocol: SecurityProtocol::Plaintext,
            }],
            rack: None,
            epoch: 5,
        };
        assert_eq!(decode_broker(2, &encode_broker(&reg, 1), 5).unwrap(), reg);
        let id = Uuid::new_v4();
        let partitions = BTreeMap::from([(
            0,
            ReplicaAssignment {
                replicas: vec![1, 2, 3],
                adding_replicas: vec![3],
                removing_replicas: vec![2],
            },
        )]);
        assert_eq!(
            decode_topic(&encode_topic(id, &partitions)).unwrap(),
            (id, partitions)
        );
        let state = PartitionState {
            leader_and_isr: LeaderAndIsr {
                leader: 1,
                leader_epoch: 4,
                isr: vec![1, 3],
                leader_recovery_state: 1,
                partition_epoch: 9,
            },
            controller_epoch: 2,
        };
        assert_eq!(
            decode_partition_state(&encode_partition_state(&state), 9).unwrap(),
            state
        );
        let tps = vec![("a".to_string(), 1)];
        assert_eq!(decode_isr_change(&encode_isr_change(&tps)).unwrap(), tps);
        assert_eq!(
            decode_controller_epoch(&encode_controller_epoch(17)).unwrap(),
            17
        );
        assert_eq!(decode_cluster_id(&encode_cluster_id("abc")).unwrap(), "abc");
        assert_eq!(parse_kafka_uuid(&kafka_uuid_string(id)), Some(id));
        assert_eq!(
            decode_producer_id_block_end(&encode_producer_id_block(1, 2000, 1000)).unwrap(),
            Some(2999)
        );
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(decode_partition_state(b"{", 0).is_err());
        assert!(decode_partition_state(br#"{"leader":1}"#, 0).is_err());
        assert!(decode_broker(1, br#"{"version":5,"endpoints":["nohost"]}"#, 0).is_err());
        assert!(decode_controller_epoch(b"x").is_err());
    }
}
