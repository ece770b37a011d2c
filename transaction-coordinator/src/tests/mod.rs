//! Scenario tests driving the coordinator the way the broker does: requests in, outputs
//! out, appends "written" to an in-memory `__transaction_state`, markers "written" on
//! demand, time advanced by hand.

mod add_partitions;
mod admin;
mod encoding;
mod end_txn;
mod init_producer_id;
mod loading;
mod timeouts;

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, EndTxnRequest,
    EndTxnResponse, GroupId, InitProducerIdRequest, InitProducerIdResponse, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::transaction_log::{self, TransactionLogRecord, TransactionLogValue};
use crate::{
    Output, TransactionCoordinator, TransactionCoordinatorConfig, TransactionResult,
    TransactionState, TxnResponse,
};

/// Newest versions the coordinator is exercised with unless a test says otherwise.
const INIT_VERSION: i16 = 5;
const ADD_VERSION: i16 = 3;
const ADD_OFFSETS_VERSION: i16 = 4;
const END_VERSION: i16 = 4;

const TIMEOUT_MS: i32 = 60_000;
const COORDINATOR_EPOCH: i32 = 7;
/// The first producer id the simulated broker hands out.
const FIRST_PRODUCER_ID: i64 = 1000;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

/// Markers the coordinator asked for.
#[derive(Debug, Clone, PartialEq)]
struct Markers {
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    result: TransactionResult,
    partitions: Vec<(String, i32)>,
}

/// The coordinator plus a simulated broker: an in-memory `__transaction_state`, a clock,
/// request ids and a producer-id allocator.
struct Harness {
    coordinator: TransactionCoordinator,
    now_ms: i64,
    next_request_id: u64,
    next_producer_id: i64,
    /// Records appended per partition of `__transaction_state`, in order.
    log: BTreeMap<i32, Vec<TransactionLogRecord>>,
    /// When set, appends fail with this (produce) error.
    fail_appends: Option<ResponseError>,
    /// When set, appends are kept in `held` instead of completing.
    hold_appends: bool,
    held: Vec<(u64, i32, Vec<TransactionLogRecord>)>,
    /// Markers requested and not yet reported written.
    markers: Vec<Markers>,
    /// Responses received, by request id.
    responses: BTreeMap<u64, TxnResponse>,
}

impl Harness {
    fn new() -> Self {
        Self::with_config(TransactionCoordinatorConfig::default())
    }

    fn with_config(config: TransactionCoordinatorConfig) -> Self {
        let partitions = config.transaction_state_log_num_partitions;
        let mut coordinator = TransactionCoordinator::new(config);
        for partition in 0..partitions {
            let out = coordinator
                .load_partition(partition, COORDINATOR_EPOCH, [], 0)
                .unwrap();
            assert!(out.is_empty());
        }
        Harness {
            coordinator,
            now_ms: 0,
            next_request_id: 1,
            next_producer_id: FIRST_PRODUCER_ID,
            log: BTreeMap::new(),
            fail_appends: None,
            hold_appends: false,
            held: Vec::new(),
            markers: Vec::new(),
            responses: BTreeMap::new(),
        }
    }

    fn request_id(&mut self) -> u64 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
    }

    /// Performs outputs as the broker would: appends are written (or fail, or are held)
    /// and reported back at once; markers are collected; responses are collected.
    fn perform(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Respond {
                    request_id,
                    response,
                } => {
                    let previous = self.responses.insert(request_id, response);
                    assert!(previous.is_none(), "request {request_id} answered twice");
                }
                Output::Append {
                    append_id,
                    partition,
                    records,
                } => {
                    if self.hold_appends {
                        self.held.push((append_id, partition, records));
                        continue;
                    }
                    self.complete_append(append_id, partition, records);
                }
                Output::WriteMarkers {
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    coordinator_epoch,
                    result,
                    partitions,
                } => self.markers.push(Markers {
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    coordinator_epoch,
                    result,
                    partitions,
                }),
            }
        }
    }

    fn complete_append(
        &mut self,
        append_id: u64,
        partition: i32,
        records: Vec<TransactionLogRecord>,
    ) {
        let result = match self.fail_appends {
            Some(error) => Err(error),
            None => {
                self.log.entry(partition).or_default().extend(records);
                Ok(())
            }
        };
        let out = self
            .coordinator
            .on_append_completed(append_id, result, self.now_ms);
        self.perform(out);
    }

    /// Completes the held appends (with the current `fail_appends`).
    fn release_appends(&mut self) {
        self.hold_appends = false;
        for (append_id, partition, records) in std::mem::take(&mut self.held) {
            self.complete_append(append_id, partition, records);
        }
    }

    /// Reports every requested marker set as written.
    fn write_markers(&mut self) {
        for markers in std::mem::take(&mut self.markers) {
            let out = self.coordinator.on_markers_written(
                &markers.transactional_id,
                markers.producer_id,
                markers.producer_epoch,
                self.now_ms,
            );
            self.perform(out);
        }
    }

    fn tick(&mut self) {
        let out = self.coordinator.tick(self.now_ms);
        self.perform(out);
    }

    fn take_response(&mut self, request_id: u64) -> Option<TxnResponse> {
        self.responses.remove(&request_id)
    }

    /// Sends InitProducerId and returns its request id (the answer may come later).
    fn send_init(
        &mut self,
        transactional_id: Option<&str>,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        version: i16,
    ) -> u64 {
        let mut request = InitProducerIdRequest::default();
        request.transactional_id = transactional_id.map(|t| TransactionalId(s(t)));
        request.transaction_timeout_ms = timeout_ms;
        let (producer_id, epoch) = expected.unwrap_or((-1, -1));
        request.producer_id = ProducerId(producer_id);
        request.producer_epoch = epoch;
        let request_id = self.request_id();
        let fresh = self.next_producer_id;
        self.next_producer_id += 1;
        let out = self.coordinator.handle_init_producer_id(
            request,
            version,
            request_id,
            fresh,
            self.now_ms,
        );
        self.perform(out);
        request_id
    }

    fn init_response(&mut self, request_id: u64) -> InitProducerIdResponse {
        match self.take_response(request_id) {
            Some(TxnResponse::InitProducerId(response)) => response,
            other => panic!("expected an InitProducerId response, got {other:?}"),
        }
    }

    /// InitProducerId answered at once (appends complete synchronously).
    fn init_full(
        &mut self,
        transactional_id: &str,
        expected: Option<(i64, i16)>,
        version: i16,
    ) -> InitProducerIdResponse {
        let request_id = self.send_init(Some(transactional_id), TIMEOUT_MS, expected, version);
        self.init_response(request_id)
    }

    /// A successful InitProducerId: (producer id, epoch).
    fn init(&mut self, transactional_id: &str) -> (i64, i16) {
        let response = self.init_full(transactional_id, None, INIT_VERSION);
        assert_eq!(response.error_code, 0, "{response:?}");
        (response.producer_id.0, response.producer_epoch)
    }

    fn send_add(
        &mut self,
        transactional_id: &str,
        producer: (i64, i16),
        partitions: &[(&str, &[i32])],
        version: i16,
    ) -> u64 {
        let mut request = AddPartitionsToTxnRequest::default();
        request.v3_and_below_transactional_id = TransactionalId(s(transactional_id));
        request.v3_and_below_producer_id = ProducerId(producer.0);
        request.v3_and_below_producer_epoch = producer.1;
        request.v3_and_below_topics = topics(partitions);
        let request_id = self.request_id();
        let out = self.coordinator.handle_add_partitions_to_txn(
            request,
            version,
            request_id,
            self.now_ms,
        );
        self.perform(out);
        request_id
    }

    fn add_response(&mut self, request_id: u64) -> AddPartitionsToTxnResponse {
        match self.take_response(request_id) {
            Some(TxnResponse::AddPartitionsToTxn(response)) => response,
            other => panic!("expected an AddPartitionsToTxn response, got {other:?}"),
        }
    }

    /// AddPartitionsToTxn v3: the error code, which must be the same for every partition.
    fn add_at(
        &mut self,
        transactional_id: &str,
        producer: (i64, i16),
        partitions: &[(&str, &[i32])],
        version: i16,
    ) -> i16 {
        let request_id = self.send_add(transactional_id, producer, partitions, version);
        let response = self.add_response(request_id);
        let codes: Vec<i16> = response
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            })
            .collect();
        let expected: usize = partitions.iter().map(|(_, p)| p.len()).sum();
        assert_eq!(codes.len(), expected, "{response:?}");
        if let Some(first) = codes.first() {
            assert!(codes.iter().all(|c| c == first), "{response:?}");
        }
        codes.first().copied().unwrap_or(0)
    }

    fn add(
        &mut self,
        transactional_id: &str,
        producer: (i64, i16),
        partitions: &[(&str, &[i32])],
    ) -> i16 {
        self.add_at(transactional_id, producer, partitions, ADD_VERSION)
    }

    fn add_offsets(
        &mut self,
        transactional_id: &str,
        producer: (i64, i16),
        group: &str,
        version: i16,
    ) -> i16 {
        let mut request = AddOffsetsToTxnRequest::default();
        request.transactional_id = TransactionalId(s(transactional_id));
        request.producer_id = ProducerId(producer.0);
        request.producer_epoch = producer.1;
        request.group_id = GroupId(s(group));
        let request_id = self.request_id();
        let out =
            self.coordinator
                .handle_add_offsets_to_txn(request, version, request_id, self.now_ms);
        self.perform(out);
        match self.take_response(request_id) {
            Some(TxnResponse::AddOffsetsToTxn(response)) => response.error_code,
            other => panic!("expected an AddOffsetsToTxn response, got {other:?}"),
        }
    }

    fn send_end(
        &mut self,
        transactional_id: &str,
        producer: (i64, i16),
        commit: bool,
        version: i16,
    ) -> u64 {
        let mut request = EndTxnRequest::default();
        request.transactional_id = TransactionalId(s(transactional_id));
        request.producer_id = ProducerId(producer.0);
        request.producer_epoch = producer.1;
        request.committed = commit;
        let request_id = self.request_id();
        let out = self
            .coordinator
            .handle_end_txn(request, version, request_id, self.now_ms);
        self.perform(out);
        request_id
    }

    fn end_response(&mut self, request_id: u64) -> EndTxnResponse {
        match self.take_response(request_id) {
            Some(TxnResponse::EndTxn(response)) => response,
            other => panic!("expected an EndTxn response, got {other:?}"),
        }
    }

    fn end_at(
        &mut self,
        transactional_id: &str,
        producer: (i64, i16),
        commit: bool,
        version: i16,
    ) -> EndTxnResponse {
        let request_id = self.send_end(transactional_id, producer, commit, version);
        self.end_response(request_id)
    }

    /// EndTxn: the error code.
    fn end(&mut self, transactional_id: &str, producer: (i64, i16), commit: bool) -> i16 {
        self.end_at(transactional_id, producer, commit, END_VERSION)
            .error_code
    }

    fn state(&self, transactional_id: &str) -> TransactionState {
        self.coordinator
            .transaction(transactional_id)
            .unwrap_or_else(|| panic!("{transactional_id} unknown"))
            .state
    }

    /// The last value written for `transactional_id` (`None` for a tombstone).
    fn last_value(&self, transactional_id: &str) -> Option<TransactionLogValue> {
        let partition = self.coordinator.partition_for(transactional_id);
        let key = transaction_log::key(transactional_id);
        let record = self.log[&partition]
            .iter()
            .rev()
            .find(|r| r.key == key)
            .expect("a record for the id");
        record
            .value
            .as_ref()
            .map(|v| transaction_log::decode_value(v).unwrap())
    }

    /// Records written for `transactional_id`, in order.
    fn values(&self, transactional_id: &str) -> Vec<Option<TransactionLogValue>> {
        let partition = self.coordinator.partition_for(transactional_id);
        let key = transaction_log::key(transactional_id);
        self.log
            .get(&partition)
            .into_iter()
            .flatten()
            .filter(|r| r.key == key)
            .map(|r| {
                r.value
                    .as_ref()
                    .map(|v| transaction_log::decode_value(v).unwrap())
            })
            .collect()
    }

    /// InitProducerId, then partitions added: an Ongoing transaction.
    fn begin(&mut self, transactional_id: &str, partitions: &[(&str, &[i32])]) -> (i64, i16) {
        let producer = self.init(transactional_id);
        assert_eq!(self.add(transactional_id, producer, partitions), 0);
        producer
    }
}

fn topics(partitions: &[(&str, &[i32])]) -> Vec<AddPartitionsToTxnTopic> {
    partitions
        .iter()
        .map(|(topic, ids)| {
            let mut t = AddPartitionsToTxnTopic::default();
            t.name = TopicName(s(topic));
            t.partitions = ids.to_vec();
            t
        })
        .collect()
}

fn batch_transaction(
    transactional_id: &str,
    producer: (i64, i16),
    partitions: &[(&str, &[i32])],
    verify_only: bool,
) -> AddPartitionsToTxnTransaction {
    let mut t = AddPartitionsToTxnTransaction::default();
    t.transactional_id = TransactionalId(s(transactional_id));
    t.producer_id = ProducerId(producer.0);
    t.producer_epoch = producer.1;
    t.verify_only = verify_only;
    t.topics = topics(partitions);
    t
}

fn tp(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_owned(), partition)
}
