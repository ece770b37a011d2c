//! DescribeTransactions and ListTransactions (KIP-664): what `kafka-transactions.sh
//! describe` and `list` show.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedState,
};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ListTransactionsRequest,
    ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::TransactionCoordinator;
use crate::transaction_log::TransactionState;

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl TransactionCoordinator {
    /// DescribeTransactions (API key 65, version 0): state, producer id and epoch,
    /// timeout, start time and partitions of each id. Per id: NOT_COORDINATOR /
    /// COORDINATOR_LOAD_IN_PROGRESS, INVALID_REQUEST for an empty id,
    /// TRANSACTIONAL_ID_NOT_FOUND for an unknown one. Authorization (and hiding topics
    /// the caller may not describe) is the broker's business.
    pub fn handle_describe_transactions(
        &self,
        request: DescribeTransactionsRequest,
    ) -> DescribeTransactionsResponse {
        let mut response = DescribeTransactionsResponse::default();
        response.transaction_states = request
            .transactional_ids
            .iter()
            .map(|id| self.describe(id.0.as_str()))
            .collect();
        response
    }

    fn describe(&self, transactional_id: &str) -> DescribedState {
        let mut state = DescribedState::default();
        state.transactional_id = TransactionalId(str_bytes(transactional_id));
        state.producer_id = ProducerId(-1);
        state.producer_epoch = -1;
        state.transaction_start_time_ms = -1;
        if transactional_id.is_empty() {
            state.error_code = ResponseError::InvalidRequest.code();
            return state;
        }
        if let Err(error) = self.owned_partition(transactional_id) {
            state.error_code = error.code();
            return state;
        }
        let Some(metadata) = self
            .transaction(transactional_id)
            .filter(|m| m.state != TransactionState::Dead)
        else {
            state.error_code = ResponseError::TransactionalIdNotFound.code();
            return state;
        };
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &metadata.partitions {
            topics.entry(topic.as_str()).or_default().push(*partition);
        }
        state.topics = topics
            .into_iter()
            .map(|(topic, partitions)| {
                let mut data = TopicData::default();
                data.topic = TopicName(str_bytes(topic));
                data.partitions = partitions;
                data
            })
            .collect();
        state.producer_id = ProducerId(metadata.producer_id);
        state.producer_epoch = metadata.producer_epoch;
        state.transaction_state = str_bytes(metadata.state.name());
        state.transaction_timeout_ms = metadata.transaction_timeout_ms;
        state.transaction_start_time_ms = metadata.start_timestamp_ms;
        state
    }

    /// ListTransactions (API key 66, versions 0–2): the transactional ids of every loaded
    /// partition, in id order, filtered by state names (unknown names are echoed in
    /// `unknown_state_filters`), producer ids, and (v1+) `duration_filter`: only
    /// transactions running longer than that many milliseconds at `now_ms`.
    /// COORDINATOR_LOAD_IN_PROGRESS while any partition is loading.
    ///
    /// The v2 `transactional_id_pattern` is a Java regular expression; the broker compiles
    /// it (answering INVALID_REGULAR_EXPRESSION if it does not) and passes its matcher as
    /// `transactional_id_matches` — `|_| true` when the pattern is null or empty. Hiding
    /// ids the caller may not describe is the broker's business.
    pub fn handle_list_transactions(
        &self,
        request: ListTransactionsRequest,
        version: i16,
        now_ms: i64,
        transactional_id_matches: impl Fn(&str) -> bool,
    ) -> ListTransactionsResponse {
        let mut response = ListTransactionsResponse::default();
        if !self.loading.is_empty() {
            response.error_code = ResponseError::CoordinatorLoadInProgress.code();
            return response;
        }
        let mut states = BTreeSet::new();
        for name in &request.state_filters {
            match TransactionState::from_name(name.as_str()) {
                Some(state) => {
                    states.insert(state);
                }
                None => response.unknown_state_filters.push(name.clone()),
            }
        }
        let producer_ids: BTreeSet<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
        let duration_filter = if version >= 1 {
            request.duration_filter
        } else {
            -1
        };
        let mut listed: Vec<ListedState> = self
            .partitions
            .values()
            .flat_map(|loaded| loaded.transactions.values())
            .filter(|m| {
                m.state != TransactionState::Dead
                    && (producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
                    && (request.state_filters.is_empty() || states.contains(&m.state))
                    && (duration_filter < 0 || now_ms - m.start_timestamp_ms > duration_filter)
                    && transactional_id_matches(&m.transactional_id)
            })
            .map(|m| {
                let mut listed = ListedState::default();
                listed.transactional_id = TransactionalId(str_bytes(&m.transactional_id));
                listed.producer_id = ProducerId(m.producer_id);
                listed.transaction_state = str_bytes(m.state.name());
                listed
            })
            .collect();
        listed.sort_by(|a, b| {
            a.transactional_id
                .0
                .as_str()
                .cmp(b.transactional_id.0.as_str())
        });
        response.transaction_states = listed;
        response
    }
}
