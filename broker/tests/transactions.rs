//! Transaction verification (KIP-890 part 1) on the wire: a producer's transactional write
//! to a partition that is not in its open transaction — a produce request that arrives
//! after its transaction was aborted, say — is refused instead of opening a transaction
//! the coordinator knows nothing about, which would hold read_committed consumers back
//! for ever (a *hanging transaction*). Exact requests, so the late write can be staged.

mod support;

use std::net::TcpStream;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, GroupId, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, BrokerId, EndTxnRequest,
    EndTxnResponse, FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse, ProduceResponse, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use support::wait::eventually;
use support::{BrokerProcess, free_port, scrape, wire};

const TOPIC: &str = "verified";
const TXN_ID: &str = "verifier";

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// One transactional batch of `count` records of producer `pid` at `epoch`, starting at
/// sequence `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, count: usize) -> Bytes {
    let records = (0..count)
        .map(|i| (None, Bytes::from(format!("v{}", seq + i as i32))))
        .collect();
    wire::producer_batch(records, pid, epoch, seq, true).freeze()
}

/// Produces at Produce `version`; returns the partition's error.
fn produce(stream: &mut TcpStream, version: i16, records: Bytes) -> Option<ResponseError> {
    let request = wire::produce_request(TOPIC, 0, records)
        .with_transactional_id(Some(TransactionalId(name(TXN_ID))));
    let response: ProduceResponse = wire::call(stream, ApiKey::Produce, version, &request);
    ResponseError::try_from_code(response.responses[0].partition_responses[0].error_code)
}

/// The end offset a consumer with `isolation_level` is told (read_committed: the LSO).
fn end_offset(stream: &mut TcpStream, isolation_level: i8) -> i64 {
    offset_for(stream, isolation_level, -1)
}

/// ListOffsets for `timestamp` (-1 latest, or a record timestamp) at `isolation_level`.
fn offset_for(stream: &mut TcpStream, isolation_level: i8, timestamp: i64) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(name(TOPIC)))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp),
                ]),
        ]);
    let response: ListOffsetsResponse = wire::call(stream, ApiKey::ListOffsets, 7, &request);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "ListOffsets error");
    p.offset
}

/// The coordinator ready and a producer id with its epoch for [`TXN_ID`].
fn init_producer(stream: &mut TcpStream) -> (i64, i16) {
    eventually("the transaction coordinator", || {
        let request = FindCoordinatorRequest::default()
            .with_key(name(TXN_ID))
            .with_key_type(1);
        let response: FindCoordinatorResponse =
            wire::call(stream, ApiKey::FindCoordinator, 3, &request);
        match response.error_code {
            0 => Ok(()),
            code => Err(format!("FindCoordinator error {code}")),
        }
    });
    eventually("InitProducerId", || {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(name(TXN_ID))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let response: InitProducerIdResponse =
            wire::call(stream, ApiKey::InitProducerId, 4, &request);
        match response.error_code {
            0 => Ok((response.producer_id.0, response.producer_epoch)),
            code => Err(format!("InitProducerId error {code}")),
        }
    })
}

fn add_partition(stream: &mut TcpStream, pid: i64, epoch: i16) {
    eventually("AddPartitionsToTxn", || {
        let request = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(name(TXN_ID)))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(name(TOPIC)))
                    .with_partitions(vec![0]),
            ]);
        let response: AddPartitionsToTxnResponse =
            wire::call(stream, ApiKey::AddPartitionsToTxn, 3, &request);
        let code =
            response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
        // CONCURRENT_TRANSACTIONS while the previous transaction's markers are written.
        match code {
            0 => Ok(()),
            code => Err(format!("AddPartitionsToTxn error {code}")),
        }
    })
}

fn end_txn(stream: &mut TcpStream, pid: i64, epoch: i16, commit: bool) {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(name(TXN_ID)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    let response: EndTxnResponse = wire::call(stream, ApiKey::EndTxn, 3, &request);
    assert_eq!(response.error_code, 0, "EndTxn");
}

fn start(verification: bool) -> (BrokerProcess, u16, TcpStream) {
    let metrics_port = free_port();
    let broker = BrokerProcess::start(&[
        ("metrics.port", &metrics_port.to_string()),
        (
            "transaction.partition.verification.enable",
            &verification.to_string(),
        ),
    ]);
    let mut stream = wire::connect(broker.port);
    let created = wire::create_topic(&mut stream, TOPIC, 1);
    assert_eq!(created.topics[0].error_code, 0);
    (broker, metrics_port, stream)
}

/// Whether the read_committed end offset reaches the high watermark (no transaction
/// holds it back), once the coordinator's markers are in.
fn stable(stream: &mut TcpStream) -> Result<i64, String> {
    let (lso, hw) = (end_offset(stream, 1), end_offset(stream, 0));
    if lso == hw {
        Ok(hw)
    } else {
        Err(format!("last stable offset {lso}, high watermark {hw}"))
    }
}

#[test]
fn a_write_outside_the_open_transaction_is_refused_and_never_hangs_the_partition() {
    let (_broker, metrics_port, mut stream) = start(true);
    let (pid, epoch) = init_producer(&mut stream);

    // Not added to the transaction: refused, nothing written. Produce v9 (before v11) is
    // told INVALID_TXN_STATE, v11 the coordinator's TRANSACTION_ABORTABLE.
    assert_eq!(
        produce(&mut stream, 9, txn_batch(pid, epoch, 0, 2)),
        Some(ResponseError::InvalidTxnState)
    );
    assert_eq!(
        produce(&mut stream, 11, txn_batch(pid, epoch, 0, 2)),
        Some(ResponseError::TransactionAbortable)
    );
    assert_eq!(end_offset(&mut stream, 0), 0);

    // Added: the first write is verified with the coordinator, the next needs no check.
    add_partition(&mut stream, pid, epoch);
    assert_eq!(produce(&mut stream, 9, txn_batch(pid, epoch, 0, 2)), None);
    assert_eq!(produce(&mut stream, 9, txn_batch(pid, epoch, 2, 1)), None);
    assert_eq!(end_offset(&mut stream, 0), 3);
    assert_eq!(
        end_offset(&mut stream, 1),
        0,
        "the open transaction holds the LSO"
    );
    // Looked up by timestamp, the open transaction's records are not offered to a
    // read_committed consumer (it could not read them yet); a read_uncommitted one is.
    assert_eq!(offset_for(&mut stream, 0, 0), 0);
    assert_eq!(offset_for(&mut stream, 1, 0), -1);

    // The transaction is aborted; then a write of it arrives late. It is refused, and
    // read_committed consumers are not held back by a transaction nobody will end.
    end_txn(&mut stream, pid, epoch, false);
    let hw = eventually("the abort marker", || stable(&mut stream));
    assert_eq!(hw, 4, "three records and the marker");
    assert_eq!(
        produce(&mut stream, 9, txn_batch(pid, epoch, 3, 1)),
        Some(ResponseError::InvalidTxnState)
    );
    assert_eq!(stable(&mut stream), Ok(4));

    // The next transaction of the same producer writes again once added.
    add_partition(&mut stream, pid, epoch);
    assert_eq!(produce(&mut stream, 9, txn_batch(pid, epoch, 3, 1)), None);
    end_txn(&mut stream, pid, epoch, true);
    assert_eq!(eventually("the commit marker", || stable(&mut stream)), 6);

    let failed = eventually("verification metrics", || {
        let body = scrape(metrics_port)?;
        let value = |result: &str| {
            body.lines()
                .find_map(|l| {
                    l.strip_prefix(&format!(
                        "strata_broker_transaction_verifications_total{{result=\"{result}\"}} "
                    ))
                })
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        match (value("verified"), value("failed")) {
            (Some(verified), Some(failed)) if verified >= 2 && failed >= 3 => Ok(failed),
            other => Err(format!("verified/failed = {other:?}")),
        }
    });
    assert_eq!(failed, 3);
}

/// TxnOffsetCommit for `group`; returns the partition's error.
fn txn_offset_commit(
    stream: &mut TcpStream,
    pid: i64,
    epoch: i16,
    group: &str,
) -> Option<ResponseError> {
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(name(TXN_ID)))
        .with_group_id(GroupId(name(group)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![
            TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(name(TOPIC)))
                .with_partitions(vec![
                    TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ]);
    let response: TxnOffsetCommitResponse =
        wire::call(stream, ApiKey::TxnOffsetCommit, 3, &request);
    ResponseError::try_from_code(response.topics[0].partitions[0].error_code)
}

#[test]
fn an_offset_commit_outside_the_open_transaction_is_refused() {
    let (_broker, _, mut stream) = start(true);
    let (pid, epoch) = init_producer(&mut stream);
    eventually("the group coordinator", || {
        let request = FindCoordinatorRequest::default().with_key(name("copiers"));
        let response: FindCoordinatorResponse =
            wire::call(&mut stream, ApiKey::FindCoordinator, 3, &request);
        match response.error_code {
            0 => Ok(()),
            code => Err(format!("FindCoordinator error {code}")),
        }
    });
    add_partition(&mut stream, pid, epoch);
    // The group's offsets partition was never added with AddOffsetsToTxn: refused, so
    // no transaction is opened on __consumer_offsets behind the coordinator's back.
    let refused = eventually("TxnOffsetCommit answered", || {
        match txn_offset_commit(&mut stream, pid, epoch, "copiers") {
            Some(ResponseError::CoordinatorLoadInProgress | ResponseError::NotCoordinator) => {
                Err("the group coordinator is loading".to_string())
            }
            other => Ok(other),
        }
    });
    assert_eq!(refused, Some(ResponseError::InvalidTxnState));
    // Added: the commit goes into the transaction.
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(name(TXN_ID)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(name("copiers")));
    let response: AddOffsetsToTxnResponse =
        wire::call(&mut stream, ApiKey::AddOffsetsToTxn, 3, &request);
    assert_eq!(response.error_code, 0);
    assert_eq!(txn_offset_commit(&mut stream, pid, epoch, "copiers"), None);
    end_txn(&mut stream, pid, epoch, true);
}

/// The contrast that shows what the check is for: with verification disabled (Kafka's
/// behaviour before 3.6), the late write opens a transaction no coordinator will end.
#[test]
fn without_verification_a_late_write_hangs_the_partition() {
    let (_broker, _, mut stream) = start(false);
    let (pid, epoch) = init_producer(&mut stream);
    add_partition(&mut stream, pid, epoch);
    assert_eq!(produce(&mut stream, 9, txn_batch(pid, epoch, 0, 1)), None);
    end_txn(&mut stream, pid, epoch, false);
    assert_eq!(eventually("the abort marker", || stable(&mut stream)), 2);
    assert_eq!(produce(&mut stream, 9, txn_batch(pid, epoch, 1, 1)), None);
    assert_eq!(end_offset(&mut stream, 0), 3);
    assert_eq!(
        end_offset(&mut stream, 1),
        2,
        "the late write holds read_committed consumers back"
    );
}
