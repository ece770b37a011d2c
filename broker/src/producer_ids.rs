//! Producer ids for InitProducerId (Kafka's `RPCProducerIdManager`): handed out from
//! blocks of 1000 that the controller reserves cluster-wide with AllocateProducerIds (a
//! conditional write of `/latest_producer_id_block`), so no two brokers ever give out the
//! same id, across restarts included. The next block is requested when 10% of the
//! current one is left, so InitProducerId rarely waits; while no block is available the
//! client is told COORDINATOR_LOAD_IN_PROGRESS and retries, as Kafka does.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use kafka_protocol::ResponseError;
use tracing::warn;

use crate::Broker;

#[derive(Default)]
pub struct ProducerIdManager {
    /// `(next id, end of the block)`, and the next block once fetched.
    blocks: Mutex<Blocks>,
    fetching: AtomicBool,
}

#[derive(Default)]
struct Blocks {
    current: Option<(i64, i64)>,
    next: Option<(i64, i64)>,
}

impl ProducerIdManager {
    /// The next producer id, fetching a block from the controller when needed.
    pub async fn next_producer_id(&self, broker: &Broker) -> Result<i64, ResponseError> {
        let (id, prefetch) = {
            let mut blocks = self.blocks.lock().expect("producer id lock");
            if blocks.current.is_none_or(|(next, end)| next >= end) {
                blocks.current = blocks.next.take();
            }
            match blocks.current.as_mut() {
                Some((next, end)) => {
                    let id = *next;
                    *next += 1;
                    let left = *end - *next;
                    (Some(id), left * 10 < 1000 && blocks.next.is_none())
                }
                None => (None, true),
            }
        };
        if prefetch {
            self.fetch_block(broker).await;
        }
        match id {
            Some(id) => Ok(id),
            None => {
                let mut blocks = self.blocks.lock().expect("producer id lock");
                if blocks.current.is_none_or(|(next, end)| next >= end) {
                    blocks.current = blocks.next.take();
                }
                match blocks.current.as_mut() {
                    Some((next, _)) => {
                        let id = *next;
                        *next += 1;
                        Ok(id)
                    }
                    None => Err(ResponseError::CoordinatorLoadInProgress),
                }
            }
        }
    }

    async fn fetch_block(&self, broker: &Broker) {
        if self.fetching.swap(true, Ordering::AcqRel) {
            return;
        }
        let result = broker
            .controller_client
            .allocate_producer_ids(broker.broker_epoch())
            .await;
        match result {
            Ok((first, len)) => {
                let mut blocks = self.blocks.lock().expect("producer id lock");
                blocks.next = Some((first, first + i64::from(len)));
            }
            Err(e) => warn!(error = %e, "cannot get a producer id block from the controller"),
        }
        self.fetching.store(false, Ordering::Release);
    }
}
