//! Fuzz targets: every decoder that reads bytes from outside the process.
//!
//! A target is a function from arbitrary bytes to nothing; it must return for every
//! input, without a panic, an abort or an allocation sized by the input's claims rather
//! than its length. The same functions serve two runners:
//!
//! - `tests/corpus.rs` (part of `make test`) replays `fuzz/corpus/<target>/` (seeds
//!   captured from real clients, and what fuzzing found interesting) and
//!   `fuzz/regressions/<target>/` (every input that once crashed a target);
//! - `src/bin/strata-fuzz.rs`, built with libFuzzer and coverage instrumentation by
//!   `fuzz/run.sh` (`make fuzz`), explores from those corpora for a fixed time per target.
//!
//! `kafka_request` drives a whole broker in this process: a frame goes through the
//! socket server, the request decoders and the handlers, as a client's would.

use std::ops::ControlFlow;
use std::path::Path;

use bytes::Bytes;

pub mod kafka;

/// A named fuzz target.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, by the name its corpus directory has.
pub const TARGETS: &[Target] = &[
    Target {
        name: "kafka_request",
        run: kafka::request,
    },
    Target {
        name: "record_batch",
        run: record_batch,
    },
    Target {
        name: "offsets_topic",
        run: offsets_topic,
    },
    Target {
        name: "znode_json",
        run: znode_json,
    },
    Target {
        name: "server_properties",
        run: server_properties,
    },
    Target {
        name: "zk_request",
        run: zk_request,
    },
    Target {
        name: "zk_quorum",
        run: zk_quorum,
    },
    Target {
        name: "zk_storage",
        run: zk_storage,
    },
    Target {
        name: "zoo_cfg",
        run: zoo_cfg,
    },
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Records as a produce request carries them: the batches a leader validates before it
/// appends (header, CRC, counts, and for compacted topics every record, decompressed
/// through a bounded stream), the lookup ListOffsets makes inside a stored batch, and the
/// in-memory decoder the cleaner uses on batches that passed that validation.
pub fn record_batch(data: &[u8]) {
    use strata_storage::records;
    let mut accepted = true;
    for batch in strata_storage::batch::batches(data) {
        let Ok(batch) = batch else {
            accepted = false;
            break;
        };
        accepted &= batch.validate().is_ok();
        accepted &= records::scan(&batch, records::MAX_DECOMPRESSED_BATCH_BYTES).is_ok();
        let _ = records::visit(&batch, records::MAX_DECOMPRESSED_BATCH_BYTES, |r| {
            if r.offset_delta > 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
    }
    // The cleaner decodes in memory only batches a compacted topic accepted.
    if accepted {
        let mut bytes = Bytes::copy_from_slice(data);
        let _ = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes);
    }
}

/// Keys and values of `__consumer_offsets`, as a broker reads them back at load.
pub fn offsets_topic(data: &[u8]) {
    use strata_group_coordinator::offsets_topic as o;
    let _ = o::decode_key(data);
    let _ = o::decode_offset_commit_value(data);
    let _ = o::decode_group_metadata_value(data);
}

/// The JSON a broker reads from ZooKeeper (written by Apache Kafka brokers, tools, or
/// anyone with write access to the znodes).
pub fn znode_json(data: &[u8]) {
    use strata_broker::metadata::json as j;
    let _ = j::decode_cluster_id(data);
    let _ = j::decode_controller(data);
    let _ = j::decode_controller_epoch(data);
    let _ = j::decode_broker(1, data, 7);
    let _ = j::decode_topic(data);
    let _ = j::decode_partition_state(data, 3);
    let _ = j::decode_entity_config(data);
    let _ = j::decode_config_change(data);
    let _ = j::decode_isr_change(data);
    let _ = j::decode_producer_id_block_end(data);
}

/// `server.properties`, and the checks a broker makes before it starts.
pub fn server_properties(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(config) =
        strata_broker::config::KafkaConfig::parse(&text, Path::new("server.properties"))
    {
        let _ = config.validate();
    }
}

/// A ZooKeeper client's frames after the length prefix: the ConnectRequest that opens a
/// session, then `xid | op | body` requests.
pub fn zk_request(data: &[u8]) {
    use strata_coordinator::jute::Reader;
    let _ = strata_coordinator::server::connection::parse_connect(data);
    let mut r = Reader::new(data);
    if let (Ok(_xid), Ok(op)) = (r.read_i32(), r.read_i32()) {
        let _ = strata_coordinator::proto::Request::decode(op, &mut r);
    }
}

/// What a server reads from its quorum peers: election votes, ZAB messages (proposals,
/// DIFF / TRUNC / SNAP, acks, pings) and session touches; and a proposal's transaction,
/// applied to a tree as a follower applies a commit.
pub fn zk_quorum(data: &[u8]) {
    use strata_coordinator::tree::DataTree;
    let _ = strata_coordinator::ensemble::peer::decode_frame(data);
    // Replication hands the tree only zxids beyond what it applied (`DataTree::apply`
    // asserts it); a fresh tree has applied zxid 0.
    if let Ok(txn) = strata_coordinator::txn::Txn::from_bytes(data)
        && txn.zxid > 0
    {
        DataTree::new().apply(&txn);
    }
}

/// A snapshot body as a restarting server (or a learner receiving SNAP) reads it.
pub fn zk_storage(data: &[u8]) {
    use strata_coordinator::jute::Reader;
    let _ = strata_coordinator::tree::DataTree::deserialize(&mut Reader::new(data));
}

/// `zoo.cfg`.
pub fn zoo_cfg(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = strata_coordinator::config::Config::parse(&text, "zoo.cfg");
}
