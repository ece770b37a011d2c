//! A seeded, deterministic simulation of replication in ZooKeeper mode.
//!
//! Three brokers host one partition (replication factor 3, `min.insync.replicas` 2,
//! unclean leader election off) under a controller that keeps the partition's state as
//! the ZooKeeper znode does: leader, leader epoch, ISR, and the znode's version as the
//! partition epoch, written only by the controller. Everything runs on one thread on a
//! simulated clock in milliseconds; one step is one event. The replication rules are the
//! broker's own pure cores, driven the way the broker drives them:
//!
//! - `replica::isr::ReplicaState`: LeaderAndIsr, followers' fetch state, ISR expansion
//!   and shrinking, the high watermark, acks=all completion — called as
//!   `replica::partition` and `replica::ReplicaManager` call it;
//! - `replica::truncation`: the diverging epoch on the leader, the truncation point on
//!   the follower — as `api::fetch` and `replica::fetcher` use them;
//! - `controller::election`: offline elections and dead replicas leaving the ISR — as the
//!   controller's event loop uses them, with AlterPartition validated as
//!   `controller::event_loop::requests` does (partition-epoch fencing,
//!   INELIGIBLE_REPLICA).
//!
//! What surrounds them is modelled here:
//!
//! - **Logs**: a list of `(leader epoch, record id)` per replica (offset = index) and a
//!   leader-epoch cache with Kafka's semantics: a new leader assigns its epoch at its log
//!   end; truncation drops epochs that start at or after the new end, also when truncating
//!   "to" the log end (as `Log::truncate_to` does); recovery after a restart drops epochs
//!   past the log end.
//! - **Network**: every message goes through a queue with random delays. A connection
//!   (follower → leader, controller → broker, broker → controller, producer → broker) is
//!   FIFO; different connections reorder freely. A lost message is a broken connection:
//!   the sender times out, opens a new connection and retries as the broker does. The
//!   slowest messages outlast the socket timeout, so what was in flight on the old
//!   connection may yet arrive after the retry: requests are served, answers are
//!   discarded by the client, which closed that socket. Network partitions cut links
//!   between brokers or between a broker and ZooKeeper/the controller.
//! - **ZooKeeper sessions**: brokers ping every tick; a session unpinged for
//!   `zookeeper.session.timeout.ms` expires and the controller treats the broker as dead.
//!   A broker that comes back with its process intact (a pause, a healed partition)
//!   registers again with a new broker epoch, its in-memory state as stale as it got.
//! - **Crashes**: the process and everything in memory is lost. Kafka does not fsync on
//!   the write path, so what survives depends on what died: when only the process dies
//!   the page cache survives and so does the whole log; in a power failure the log is cut
//!   back to what the OS had written back (a writeback runs every 100 ms). Two overlapping
//!   losses of unflushed records can lose committed ones in ZooKeeper-mode Kafka (the
//!   last ISR member comes back short; KIP-966 is the fix), so a power failure is only
//!   injected into a healthy cluster, and nothing that could end another ZooKeeper
//!   session is injected until the failed broker's session has expired. A restarted
//!   broker registers once its old session has expired, with its high watermark from the
//!   checkpoint.
//! - **Pauses**: a process that stops for a while (a long GC, SIGSTOP) and resumes with
//!   the stale state it had, handling what queued up meanwhile — a zombie leader, if its
//!   session expired meanwhile.
//! - **The controller** never dies but can fail over: a new controller epoch, every
//!   broker told the whole state again, requests to the old controller lost.
//!
//! Invariants, checked after every step (6 also at each acknowledgment):
//!
//! 1. Every record acknowledged to an acks=all producer is committed at the offset it was
//!    acknowledged at, and every ISR member (so every future leader) holds every
//!    committed record at its offset.
//! 2. A leader's high watermark never moves back within its epoch and never exceeds the
//!    log end offset of any replica in the ISR it waits for.
//! 3. Below its high watermark, every replica's log agrees with every other's (there is
//!    one committed prefix), and no replica truncates below its high watermark.
//! 4. At most one broker believes it leads at the epoch the controller considers
//!    current, and it is the controller's leader.
//! 5. The controller's ISR is never empty, holds only replicas, and holds the leader.
//! 6. No acknowledgment while fewer than `min.insync.replicas` are in the ISR: the
//!    leader's ISR has that many members, and that many replicas received the record
//!    (it is in their log, or was until a power failure).
//! 7. The leader at the current epoch waits for every replica the controller counts in
//!    the ISR (KIP-497: the controller's ISR is within the leader's maximal ISR), so the
//!    high watermark never passes a replica that could be elected next.
//!
//! After the faults, everything heals: processes resume or restart, links come back, and
//! the network is calm (no loss, nothing slower than a socket timeout). Within a deadline
//! the partition must have a leader, the full ISR again, and a new record must be
//! acknowledged. Once the traffic of the faults has drained, the controller sends every
//! broker one more UpdateMetadata: ZooKeeper-mode Kafka has no order between a request
//! the controller retried on a new connection and the copy still in flight on the old one,
//! so a stale live-broker list can land last and keep a leader from expanding its ISR
//! until the next broker change — which is what that UpdateMetadata stands for.
//!
//! `STRATA_SIM_SEED=<n>` replays one seed, `STRATA_SIM_SEEDS=<n>` runs seeds `0..n`
//! (default 500), `STRATA_SIM_STEPS=<n>` sets the steps with faults per seed (default
//! 3000). A failure prints the seed, the violation, the cluster's state and the last
//! events.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::fmt;
use std::time::Instant;

use kafka_protocol::ResponseError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_broker::controller::election;
use strata_broker::metadata::LeaderAndIsr;
use strata_broker::replica::isr::{
    AlterPartitionProposal, AlterPartitionResult, LeaderAndIsrState, ReplicaState,
};
use strata_broker::replica::truncation;

type BrokerId = i32;
type RequestId = u64;
type RecordId = u64;

// --- Settings: Kafka's, with the timeouts scaled down -------------------------------------

const BROKERS: [BrokerId; 3] = [1, 2, 3];
const MIN_INSYNC_REPLICAS: i32 = 2;
/// `replica.lag.time.max.ms`.
const REPLICA_LAG_TIME_MAX_MS: i64 = 1_000;
/// `zookeeper.session.timeout.ms`.
const SESSION_TIMEOUT_MS: i64 = 600;
/// Broker housekeeping: ZooKeeper pings, the ISR shrink check (every
/// `replica.lag.time.max.ms / 2`), the high watermark checkpoint.
const BROKER_TICK_MS: i64 = 100;
/// Controller housekeeping: session expiry, partitions without a live leader.
const CONTROLLER_TICK_MS: i64 = 100;
/// `replica.socket.timeout.ms`, `controller.socket.timeout.ms`, and AlterPartition's
/// request timeout: a request unanswered this long means a broken connection.
const SOCKET_TIMEOUT_MS: i64 = 300;
/// A follower's next fetch after an empty answer (what the leader's long poll
/// `replica.fetch.wait.max.ms` amounts to).
const FETCH_IDLE_MS: i64 = 20;
/// `replica.fetch.backoff.ms`.
const FETCH_BACKOFF_MS: i64 = 50;
/// Records per fetch answer (`replica.fetch.max.bytes`).
const FETCH_MAX_RECORDS: usize = 8;
/// The AlterPartition manager's pause after a failed request.
const ALTER_PARTITION_BACKOFF_MS: i64 = 100;
/// The acks=all wait of a produce request (`timeout.ms`).
const PRODUCE_TIMEOUT_MS: i64 = 1_500;
/// `replica.high.watermark.checkpoint.interval.ms`.
const HW_CHECKPOINT_INTERVAL_MS: i64 = 500;
/// How often the OS writes some log's dirty pages back to disk.
const WRITEBACK_INTERVAL_MS: i64 = 100;
/// The slowest message, slower than a socket timeout: a request can be served after
/// its sender gave up on the connection and retried on a new one.
const MAX_NETWORK_DELAY_MS: i64 = 800;
/// The highest share of messages a seed loses (each seed draws its own).
const MAX_MESSAGE_LOSS: f64 = 0.06;
/// Faults in force at once (crashed or paused brokers, cut links).
const MAX_ACTIVE_FAULTS: usize = 2;
/// After the faults heal, the cluster must be whole again within this.
const LIVENESS_TIMEOUT_MS: i64 = 30_000;
/// Events shown when a seed fails.
const TRACE_LINES: usize = 60;

const DEFAULT_SEEDS: u64 = 500;
const DEFAULT_STEPS: u64 = 3_000;

// --- Logs -------------------------------------------------------------------------------

/// One record in a replica's log: the epoch of the leader that appended it, and which
/// record it is (records are unique, so equal entries are the same record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    epoch: i32,
    record: RecordId,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}@e{}", self.record, self.epoch)
    }
}

fn offset_of(index: usize) -> i64 {
    i64::try_from(index).expect("offsets fit in i64")
}

fn index_of(offset: i64) -> usize {
    usize::try_from(offset).expect("offsets are not negative")
}

/// Kafka's `LeaderEpochFileCache`: for each leader epoch that wrote to (or was assigned
/// on) the log, its start offset; both strictly increasing.
#[derive(Debug, Clone, Default)]
struct LeaderEpochCache {
    epochs: BTreeMap<i32, i64>,
}

impl LeaderEpochCache {
    fn latest_epoch(&self) -> Option<i32> {
        self.epochs.keys().next_back().copied()
    }

    /// Records that `epoch` starts at `start_offset`, dropping the entries it
    /// contradicts (same or larger epoch, same or larger start).
    fn assign(&mut self, epoch: i32, start_offset: i64) {
        if let Some((&latest, &start)) = self.epochs.iter().next_back()
            && latest == epoch
            && start_offset >= start
        {
            return;
        }
        while let Some((&e, &start)) = self.epochs.iter().next_back() {
            if e >= epoch || start >= start_offset {
                self.epochs.remove(&e);
            } else {
                break;
            }
        }
        self.epochs.insert(epoch, start_offset);
    }

    /// Kafka's `endOffsetFor`: `(largest epoch ≤ requested, where it ends)`.
    fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (-1, -1);
        if requested < 0 {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some((_, &next_start)) = self.epochs.range(requested + 1..).next() else {
            return UNDEFINED;
        };
        match self.epochs.range(..=requested).next_back() {
            Some((&floor, _)) => (floor, next_start),
            None => (requested, next_start),
        }
    }

    fn truncate_from_end(&mut self, end_offset: i64) {
        self.epochs.retain(|_, start| *start < end_offset);
    }
}

/// One replica's log as the page cache holds it, with what a power failure would leave.
#[derive(Debug, Default)]
struct ReplicaLog {
    /// The records; offset = index (no retention: the log always starts at 0).
    entries: Vec<Entry>,
    epochs: LeaderEpochCache,
    /// In memory only: a restart reads it back from the checkpoint.
    high_watermark: i64,
    /// Entries the OS has written back to disk.
    flushed: usize,
    /// `replication-offset-checkpoint`.
    high_watermark_checkpoint: i64,
    /// The shortest length the log was cut to since the checker last looked.
    cut_to: Option<usize>,
    /// A truncation below the high watermark since the checker last looked:
    /// `(truncated to, high watermark)`.
    truncated_below_high_watermark: Option<(i64, i64)>,
}

impl ReplicaLog {
    fn log_end_offset(&self) -> i64 {
        offset_of(self.entries.len())
    }

    fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    fn append_as_leader(&mut self, entry: Entry) -> i64 {
        let offset = self.log_end_offset();
        self.epochs.assign(entry.epoch, offset);
        self.entries.push(entry);
        offset
    }

    /// Appends what the leader sent, recording the epochs its batches carry.
    fn append_as_follower(&mut self, entries: &[Entry]) {
        for entry in entries {
            self.epochs.assign(entry.epoch, self.log_end_offset());
            self.entries.push(*entry);
        }
    }

    /// `Log::truncate_to`: at or past the log end no record goes, but an epoch that
    /// starts at the log end does (a leader deposed before appending; kept, it would be
    /// this replica's last fetched epoch and diverge on every fetch).
    fn truncate_to(&mut self, offset: i64) {
        let end = self.log_end_offset();
        if offset >= end {
            self.epochs.truncate_from_end(end);
            return;
        }
        if offset < self.high_watermark && self.truncated_below_high_watermark.is_none() {
            self.truncated_below_high_watermark = Some((offset, self.high_watermark));
        }
        self.cut(index_of(offset));
        self.high_watermark = self.high_watermark.min(offset);
        self.epochs.truncate_from_end(offset);
    }

    fn cut(&mut self, len: usize) {
        self.entries.truncate(len);
        self.flushed = self.flushed.min(len);
        self.cut_to = Some(self.cut_to.map_or(len, |c| c.min(len)));
    }

    fn maybe_increment_high_watermark(&mut self, high_watermark: i64) -> bool {
        let new = high_watermark.min(self.log_end_offset());
        let moved = new > self.high_watermark;
        if moved {
            self.high_watermark = new;
        }
        moved
    }

    /// A follower takes its leader's high watermark, as far as its own log reaches.
    fn update_high_watermark(&mut self, high_watermark: i64) {
        self.high_watermark = high_watermark.min(self.log_end_offset()).max(0);
    }

    /// A power failure: what the OS had not written back is gone.
    fn lose_unflushed(&mut self) {
        self.cut(self.flushed);
    }

    /// Opening the log after a restart (Kafka's `LogLoader`): epochs past the log end
    /// go, and the high watermark comes from the checkpoint.
    fn recover(&mut self) {
        let end = self.log_end_offset();
        self.epochs.truncate_from_end(end);
        self.high_watermark = self.high_watermark_checkpoint.min(end);
    }
}

// --- Network ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Broker(BrokerId),
    /// ZooKeeper and the controller.
    Controller,
    Client,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Broker(id) => write!(f, "b{id}"),
            Node::Controller => f.write_str("controller"),
            Node::Client => f.write_str("client"),
        }
    }
}

/// A connection's ends: `client` opened it, `server` accepted it. Each ordered pair has
/// one: a follower's fetcher to its leader, the controller's channel to a broker, a
/// broker's AlterPartition channel to the controller, the producer's to a broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Conn {
    client: Node,
    server: Node,
}

#[derive(Debug, Default)]
struct Connection {
    /// Bumped when the client gives up on the connection and opens a new one.
    generation: u32,
    /// When the last message each way (to the server, to the client) is delivered: a
    /// connection delivers in order.
    last_delivery_ms: [i64; 2],
}

#[derive(Debug, Default)]
struct Network {
    connections: BTreeMap<Conn, Connection>,
    /// Cut links, counted: two faults may cut the same link.
    cut: BTreeMap<(Node, Node), u32>,
    /// The chance that a message is lost (and its connection broken).
    loss: f64,
    /// Once healed: no message is slower than a socket timeout.
    calm: bool,
}

fn link(a: Node, b: Node) -> (Node, Node) {
    (a.min(b), a.max(b))
}

impl Network {
    fn connected(&self, a: Node, b: Node) -> bool {
        !self.cut.contains_key(&link(a, b))
    }

    fn generation(&self, conn: Conn) -> u32 {
        self.connections.get(&conn).map_or(0, |c| c.generation)
    }

    /// The client side closed the connection; the next message opens a new one, which
    /// owes nothing to the order of the old one.
    fn reconnect(&mut self, conn: Conn) {
        let connection = self.connections.entry(conn).or_default();
        connection.generation += 1;
        connection.last_delivery_ms = [0, 0];
    }

    fn cut_links(&mut self, links: &[(Node, Node)]) {
        for l in links {
            *self.cut.entry(*l).or_default() += 1;
        }
    }

    fn heal_links(&mut self, links: &[(Node, Node)]) {
        for l in links {
            if let Some(count) = self.cut.get_mut(l) {
                *count -= 1;
                if *count == 0 {
                    self.cut.remove(l);
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Envelope {
    conn: Conn,
    /// Client → server (a request) or back (a response).
    to_server: bool,
    generation: u32,
    sent_ms: i64,
    message: Message,
}

impl Envelope {
    fn from(&self) -> Node {
        if self.to_server {
            self.conn.client
        } else {
            self.conn.server
        }
    }

    fn to(&self) -> Node {
        if self.to_server {
            self.conn.server
        } else {
            self.conn.client
        }
    }
}

#[derive(Debug, Clone)]
enum Message {
    LeaderAndIsr {
        id: RequestId,
        controller_epoch: i32,
        broker_epoch: i64,
        state: LeaderAndIsrState,
    },
    UpdateMetadata {
        id: RequestId,
        controller_epoch: i32,
        broker_epoch: i64,
        live_brokers: BTreeSet<BrokerId>,
    },
    ControllerResponse {
        id: RequestId,
    },
    Fetch(FetchRequest),
    FetchResponse {
        id: RequestId,
        result: FetchResult,
    },
    AlterPartition {
        id: RequestId,
        broker: BrokerId,
        broker_epoch: i64,
        proposal: AlterPartitionProposal,
    },
    /// `Err`: the request failed as a whole (STALE_BROKER_EPOCH).
    AlterPartitionResponse {
        id: RequestId,
        result: Result<AlterPartitionResult, ResponseError>,
    },
    Produce {
        record: RecordId,
    },
    ProduceResponse {
        record: RecordId,
        result: Result<i64, ResponseError>,
    },
}

#[derive(Debug, Clone, Copy)]
struct FetchRequest {
    id: RequestId,
    replica: BrokerId,
    current_leader_epoch: i32,
    fetch_offset: i64,
    /// -1 when the follower's log has no epoch.
    last_fetched_epoch: i32,
}

#[derive(Debug, Clone)]
enum FetchResult {
    Records {
        entries: Vec<Entry>,
        high_watermark: i64,
    },
    Diverging {
        epoch: i32,
        end_offset: i64,
    },
    /// OFFSET_OUT_OF_RANGE, with the leader's log end offset the follower then asks for
    /// with ListOffsets.
    OutOfRange {
        leader_log_end_offset: i64,
    },
    Error(ResponseError),
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::LeaderAndIsr {
                id,
                controller_epoch,
                state,
                ..
            } => write!(
                f,
                "LeaderAndIsr#{id} (leader {}, epoch {}, isr {:?}, partition epoch {}, controller epoch {controller_epoch})",
                state.leader, state.leader_epoch, state.isr, state.partition_epoch
            ),
            Message::UpdateMetadata {
                id, live_brokers, ..
            } => write!(f, "UpdateMetadata#{id} (live {live_brokers:?})"),
            Message::ControllerResponse { id } => write!(f, "response#{id}"),
            Message::Fetch(r) => write!(
                f,
                "Fetch#{} (offset {}, last epoch {}, leader epoch {})",
                r.id, r.fetch_offset, r.last_fetched_epoch, r.current_leader_epoch
            ),
            Message::FetchResponse { id, result } => match result {
                FetchResult::Records {
                    entries,
                    high_watermark,
                } => write!(
                    f,
                    "FetchResponse#{id} ({} records, high watermark {high_watermark})",
                    entries.len()
                ),
                FetchResult::Diverging { epoch, end_offset } => write!(
                    f,
                    "FetchResponse#{id} (diverging: epoch {epoch} ends at {end_offset})"
                ),
                FetchResult::OutOfRange {
                    leader_log_end_offset,
                } => write!(
                    f,
                    "FetchResponse#{id} (out of range, leader's end {leader_log_end_offset})"
                ),
                FetchResult::Error(e) => write!(f, "FetchResponse#{id} ({e:?})"),
            },
            Message::AlterPartition {
                id,
                broker_epoch,
                proposal,
                ..
            } => write!(
                f,
                "AlterPartition#{id} (isr {:?}, leader epoch {}, partition epoch {}, broker epoch {broker_epoch})",
                proposal.new_isr, proposal.leader_epoch, proposal.partition_epoch
            ),
            Message::AlterPartitionResponse { id, result } => match result {
                Ok(AlterPartitionResult::Committed {
                    isr,
                    partition_epoch,
                    ..
                }) => write!(
                    f,
                    "AlterPartitionResponse#{id} (committed isr {isr:?}, partition epoch {partition_epoch})"
                ),
                Ok(AlterPartitionResult::Failed(e)) | Err(e) => {
                    write!(f, "AlterPartitionResponse#{id} ({e:?})")
                }
            },
            Message::Produce { record } => write!(f, "Produce (r{record})"),
            Message::ProduceResponse { record, result } => match result {
                Ok(offset) => write!(f, "ProduceResponse (r{record} at {offset})"),
                Err(e) => write!(f, "ProduceResponse (r{record}: {e:?})"),
            },
        }
    }
}

// --- Events -----------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Event {
    Deliver(Envelope),
    /// A timer of one broker process; `incarnation` tells whether that process lives.
    Broker {
        broker: BrokerId,
        incarnation: u32,
        timer: BrokerTimer,
    },
    ControllerTick,
    /// A controller request to `broker` unanswered for the socket timeout.
    ControllerTimeout {
        broker: BrokerId,
        id: RequestId,
    },
    Writeback,
    /// The producer sends its next record.
    Produce,
    /// Time for the next fault.
    Nemesis,
    Heal(Heal),
    /// After the heal, once the traffic of the faults has drained: UpdateMetadata to
    /// every broker.
    RefreshMetadata,
}

#[derive(Debug, Clone, Copy)]
enum BrokerTimer {
    Tick,
    Fetch,
    Timeout(RequestId),
    SendAlterPartition,
}

#[derive(Debug, Clone)]
enum Heal {
    Resume(BrokerId),
    Restart(BrokerId),
    Reconnect(Vec<(Node, Node)>),
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Deliver(e) => write!(f, "{} → {}: {}", e.from(), e.to(), e.message),
            Event::Broker {
                broker,
                timer: BrokerTimer::Timeout(id),
                ..
            } => write!(f, "b{broker}: request#{id} timed out"),
            Event::Broker { broker, timer, .. } => write!(f, "b{broker}: {timer:?}"),
            Event::ControllerTimeout { broker, id } => {
                write!(f, "controller: request#{id} to b{broker} timed out")
            }
            Event::Heal(Heal::Reconnect(links)) => {
                let links: Vec<String> = links.iter().map(|(a, b)| format!("{a}-{b}")).collect();
                write!(f, "heal: links {} back", links.join(" "))
            }
            Event::Heal(heal) => write!(f, "heal: {heal:?}"),
            other => write!(f, "{other:?}"),
        }
    }
}

struct Scheduled {
    at_ms: i64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at_ms, self.seq).cmp(&(other.at_ms, other.seq))
    }
}

/// What handling one event asks of the world: messages to send, timers to set,
/// connections to give up on, acknowledgments for the checker.
struct Effects {
    next_request_id: RequestId,
    sends: Vec<(Conn, bool, Message)>,
    timers: Vec<(i64, Event)>,
    reconnects: Vec<Conn>,
    acks: Vec<Ack>,
}

impl Effects {
    fn new(next_request_id: RequestId) -> Effects {
        Effects {
            next_request_id,
            sends: Vec::new(),
            timers: Vec::new(),
            reconnects: Vec::new(),
            acks: Vec::new(),
        }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request_id += 1;
        self.next_request_id
    }

    fn request(&mut self, conn: Conn, message: Message) {
        self.sends.push((conn, true, message));
    }

    fn respond(&mut self, conn: Conn, message: Message) {
        self.sends.push((conn, false, message));
    }

    fn after(&mut self, delay_ms: i64, event: Event) {
        self.timers.push((delay_ms, event));
    }
}

/// An acks=all produce answered with success.
#[derive(Debug)]
struct Ack {
    leader: BrokerId,
    offset: i64,
    entry: Entry,
    /// The leader's maximal ISR when it acknowledged.
    maximal_isr: Vec<BrokerId>,
}

// --- Brokers ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Paused,
    Crashed,
}

struct Broker {
    id: BrokerId,
    log: ReplicaLog,
    status: Status,
    /// Bumped when the process dies, so its timers die with it.
    incarnation: u32,
    /// What reached the process while it was paused, in order.
    stash: Vec<Event>,
    /// `None` while crashed.
    process: Option<Process>,
    /// The log as it was when the power failed, until the broker is back in the ISR:
    /// it had received those records, and has lost the unflushed ones.
    log_before_power_failure: Option<Vec<Entry>>,
}

/// What a broker process keeps in memory.
struct Process {
    replica: ReplicaState,
    /// The ZooKeeper registration's epoch; -1 until registered.
    broker_epoch: i64,
    controller_epoch: i32,
    /// The metadata cache's live brokers (UpdateMetadata).
    live_brokers: BTreeSet<BrokerId>,
    fetcher: Option<Fetcher>,
    alter_partition: AlterPartitionSender,
    produces: Vec<WaitingProduce>,
    next_shrink_ms: i64,
    next_checkpoint_ms: i64,
}

/// The follower's fetcher of this partition (`replica::fetcher`): one request in flight.
struct Fetcher {
    leader: BrokerId,
    leader_epoch: i32,
    in_flight: Option<InFlightFetch>,
    delayed_until_ms: i64,
}

#[derive(Debug, Clone, Copy)]
struct InFlightFetch {
    id: RequestId,
    fetch_offset: i64,
    leader_epoch: i32,
}

/// The broker's `AlterPartitionManager` for this partition: one request in flight, the
/// latest proposal waiting behind it.
#[derive(Default)]
struct AlterPartitionSender {
    pending: Option<AlterPartitionProposal>,
    in_flight: Option<(RequestId, AlterPartitionProposal)>,
    backoff_until_ms: i64,
}

impl AlterPartitionSender {
    /// Puts a proposal back unless a newer one arrived meanwhile.
    fn requeue(&mut self, proposal: AlterPartitionProposal) {
        if self.pending.is_none() {
            self.pending = Some(proposal);
        }
    }
}

/// An acks=all produce waiting for the high watermark (Kafka's `DelayedProduce`).
struct WaitingProduce {
    offset: i64,
    entry: Entry,
    deadline_ms: i64,
}

impl Process {
    fn new(id: BrokerId, broker_epoch: i64, now_ms: i64) -> Process {
        Process {
            replica: ReplicaState::new(id),
            broker_epoch,
            controller_epoch: -1,
            live_brokers: BTreeSet::new(),
            fetcher: None,
            alter_partition: AlterPartitionSender::default(),
            produces: Vec::new(),
            next_shrink_ms: now_ms + REPLICA_LAG_TIME_MAX_MS / 2,
            next_checkpoint_ms: now_ms + HW_CHECKPOINT_INTERVAL_MS,
        }
    }
}

fn broker_timer(broker: BrokerId, incarnation: u32, timer: BrokerTimer) -> Event {
    Event::Broker {
        broker,
        incarnation,
        timer,
    }
}

/// `Partition::maybe_increment_hw`, with the metadata cache's view of who is alive.
fn maybe_increment_high_watermark(
    replica: &ReplicaState,
    live_brokers: &BTreeSet<BrokerId>,
    log: &mut ReplicaLog,
    now_ms: i64,
) -> bool {
    let me = replica.local_broker_id;
    replica
        .new_high_watermark(
            log.log_end_offset(),
            log.high_watermark,
            now_ms,
            REPLICA_LAG_TIME_MAX_MS,
            MIN_INSYNC_REPLICAS,
            |b| b == me || live_brokers.contains(&b),
        )
        .is_some_and(|hw| log.maybe_increment_high_watermark(hw))
}

impl Broker {
    fn new(id: BrokerId) -> Broker {
        Broker {
            id,
            log: ReplicaLog::default(),
            status: Status::Running,
            incarnation: 0,
            stash: Vec::new(),
            process: None,
            log_before_power_failure: None,
        }
    }

    fn timer(&self, timer: BrokerTimer) -> Event {
        broker_timer(self.id, self.incarnation, timer)
    }

    fn on_message(&mut self, now_ms: i64, envelope: Envelope, fx: &mut Effects) {
        if self.process.is_none() {
            return;
        }
        let conn = envelope.conn;
        match envelope.message {
            Message::LeaderAndIsr {
                id,
                controller_epoch,
                broker_epoch,
                state,
            } => {
                self.on_leader_and_isr(now_ms, controller_epoch, broker_epoch, &state, fx);
                fx.respond(conn, Message::ControllerResponse { id });
            }
            Message::UpdateMetadata {
                id,
                controller_epoch,
                broker_epoch,
                live_brokers,
            } => {
                let p = self.process.as_mut().expect("running");
                // `api::update_metadata`: not for an older incarnation, not from an older
                // controller.
                let stale_broker_epoch = broker_epoch != -1 && broker_epoch < p.broker_epoch;
                if !stale_broker_epoch && controller_epoch >= p.controller_epoch {
                    p.controller_epoch = controller_epoch;
                    p.live_brokers = live_brokers;
                }
                fx.respond(conn, Message::ControllerResponse { id });
            }
            Message::Fetch(request) => {
                let result = self.on_fetch(now_ms, &request);
                fx.respond(
                    conn,
                    Message::FetchResponse {
                        id: request.id,
                        result,
                    },
                );
            }
            Message::FetchResponse { id, result } => self.on_fetch_response(now_ms, id, result, fx),
            Message::AlterPartitionResponse { id, result } => {
                self.on_alter_partition_response(now_ms, id, result, fx)
            }
            Message::Produce { record } => {
                if let Err(e) = self.on_produce(now_ms, record) {
                    fx.respond(
                        conn,
                        Message::ProduceResponse {
                            record,
                            result: Err(e),
                        },
                    );
                }
            }
            Message::ControllerResponse { .. }
            | Message::AlterPartition { .. }
            | Message::ProduceResponse { .. } => unreachable!("not sent to brokers"),
        }
        self.after_event(now_ms, fx);
    }

    fn on_timer(&mut self, now_ms: i64, timer: BrokerTimer, fx: &mut Effects) {
        match timer {
            BrokerTimer::Tick => self.on_tick(now_ms, fx),
            BrokerTimer::Fetch => self.on_fetch_timer(now_ms, fx),
            BrokerTimer::Timeout(id) => self.on_request_timeout(now_ms, id, fx),
            BrokerTimer::SendAlterPartition => {}
        }
        self.after_event(now_ms, fx);
    }

    /// What follows every event: AlterPartition proposals go out, acks=all waits complete.
    fn after_event(&mut self, now_ms: i64, fx: &mut Effects) {
        self.send_alter_partition(now_ms, fx);
        self.complete_produces(now_ms, fx);
    }

    /// `api::leader_and_isr` and `ReplicaManager::become_leader_or_follower`.
    fn on_leader_and_isr(
        &mut self,
        now_ms: i64,
        controller_epoch: i32,
        broker_epoch: i64,
        state: &LeaderAndIsrState,
        fx: &mut Effects,
    ) {
        let me = self.id;
        let fetch_timer = self.timer(BrokerTimer::Fetch);
        let log = &mut self.log;
        let p = self.process.as_mut().expect("running");
        if broker_epoch != -1 && broker_epoch < p.broker_epoch {
            return; // STALE_BROKER_EPOCH: meant for an older incarnation
        }
        if controller_epoch < p.controller_epoch {
            return; // STALE_CONTROLLER_EPOCH
        }
        p.controller_epoch = controller_epoch;
        if !state.replicas.contains(&me) {
            return;
        }
        if state.leader_epoch >= 0 && state.leader_epoch <= p.replica.leader_epoch {
            return; // not a newer leader epoch: a retried or resent request
        }
        if state.leader == me {
            p.fetcher = None;
            let log_end_offset = log.log_end_offset();
            let change = p.replica.make_leader(state, log_end_offset, now_ms);
            if change.skipped {
                return;
            }
            if change.new_leader_epoch {
                log.epochs.assign(state.leader_epoch, log_end_offset);
            }
            maybe_increment_high_watermark(&p.replica, &p.live_brokers, log, now_ms);
        } else {
            let change = p.replica.make_follower(state);
            if change.skipped {
                return;
            }
            let fetching_from_leader = p.fetcher.as_ref().is_some_and(|f| f.leader == state.leader);
            if change.new_leader_epoch || !fetching_from_leader {
                // The fetcher of the same leader keeps its connection, and its request in
                // flight; a response to it is dropped below if the epoch moved on.
                let in_flight = p
                    .fetcher
                    .take()
                    .filter(|f| f.leader == state.leader)
                    .and_then(|f| f.in_flight);
                if state.leader >= 0 {
                    p.fetcher = Some(Fetcher {
                        leader: state.leader,
                        leader_epoch: state.leader_epoch,
                        in_flight,
                        delayed_until_ms: 0,
                    });
                    fx.after(0, fetch_timer);
                }
            }
        }
    }

    /// The leader's side of a follower's fetch: `api::fetch` → `Partition::read_records`
    /// → `ReplicaManager::record_follower_fetch`.
    fn on_fetch(&mut self, now_ms: i64, request: &FetchRequest) -> FetchResult {
        let log = &mut self.log;
        let p = self.process.as_mut().expect("running");
        if !p.replica.is_leader() {
            return FetchResult::Error(ResponseError::NotLeaderOrFollower);
        }
        if request.current_leader_epoch > p.replica.leader_epoch {
            return FetchResult::Error(ResponseError::UnknownLeaderEpoch);
        }
        if request.current_leader_epoch >= 0
            && request.current_leader_epoch < p.replica.leader_epoch
        {
            return FetchResult::Error(ResponseError::FencedLeaderEpoch);
        }
        let high_watermark = log.high_watermark;
        let log_end_offset = log.log_end_offset();
        if request.last_fetched_epoch >= 0 {
            let end = log.end_offset_for_epoch(request.last_fetched_epoch);
            if let Some((epoch, end_offset)) =
                truncation::diverging_epoch(request.fetch_offset, request.last_fetched_epoch, end)
            {
                return FetchResult::Diverging { epoch, end_offset };
            }
        }
        if request.fetch_offset > log_end_offset {
            return FetchResult::OutOfRange {
                leader_log_end_offset: log_end_offset,
            };
        }
        let from = index_of(request.fetch_offset);
        let to = log.entries.len().min(from + FETCH_MAX_RECORDS);
        let entries = log.entries[from..to].to_vec();
        let Process {
            replica,
            live_brokers,
            alter_partition,
            ..
        } = p;
        if !replica.update_follower_fetch_state(
            request.replica,
            request.fetch_offset,
            0,
            now_ms,
            log_end_offset,
            None,
        ) {
            return FetchResult::Error(ResponseError::NotLeaderOrFollower);
        }
        let me = self.id;
        let is_alive = |b: BrokerId| b == me || live_brokers.contains(&b);
        if let Some(proposal) =
            replica.maybe_expand_isr(request.replica, log.high_watermark, is_alive)
        {
            alter_partition.pending = Some(proposal);
        }
        maybe_increment_high_watermark(replica, live_brokers, log, now_ms);
        FetchResult::Records {
            entries,
            high_watermark,
        }
    }

    /// The follower sends its next fetch (`fetcher::build_request`).
    fn on_fetch_timer(&mut self, now_ms: i64, fx: &mut Effects) {
        let (me, incarnation) = (self.id, self.incarnation);
        let fetch_offset = self.log.log_end_offset();
        let last_fetched_epoch = self.log.latest_epoch().unwrap_or(-1);
        let Some(f) = self.process.as_mut().and_then(|p| p.fetcher.as_mut()) else {
            return;
        };
        if f.in_flight.is_some() || now_ms < f.delayed_until_ms {
            return;
        }
        let id = fx.request_id();
        f.in_flight = Some(InFlightFetch {
            id,
            fetch_offset,
            leader_epoch: f.leader_epoch,
        });
        let request = FetchRequest {
            id,
            replica: me,
            current_leader_epoch: f.leader_epoch,
            fetch_offset,
            last_fetched_epoch,
        };
        let conn = Conn {
            client: Node::Broker(me),
            server: Node::Broker(f.leader),
        };
        fx.request(conn, Message::Fetch(request));
        fx.after(
            SOCKET_TIMEOUT_MS,
            broker_timer(me, incarnation, BrokerTimer::Timeout(id)),
        );
    }

    /// The follower's side of a fetch answer (`fetcher::process_partition`).
    fn on_fetch_response(
        &mut self,
        now_ms: i64,
        id: RequestId,
        result: FetchResult,
        fx: &mut Effects,
    ) {
        let fetch_timer = self.timer(BrokerTimer::Fetch);
        let log = &mut self.log;
        let p = self.process.as_mut().expect("running");
        let Some(f) = p.fetcher.as_mut() else {
            return;
        };
        let Some(sent) = f.in_flight.take_if(|s| s.id == id) else {
            return;
        };
        if sent.leader_epoch != f.leader_epoch {
            fx.after(0, fetch_timer);
            return;
        }
        let next_fetch_ms = match result {
            FetchResult::Error(_) => FETCH_BACKOFF_MS,
            FetchResult::OutOfRange {
                leader_log_end_offset,
            } => {
                // `fetcher::handle_out_of_range`: only a follower ahead of its leader
                // (after an unclean election) truncates.
                if leader_log_end_offset < sent.fetch_offset {
                    log.truncate_to(leader_log_end_offset);
                    0
                } else {
                    FETCH_BACKOFF_MS
                }
            }
            FetchResult::Diverging { epoch, end_offset } => {
                // `Partition::truncation_point`.
                let (own_epoch, own_end) = log.end_offset_for_epoch(epoch);
                let follower = (own_end >= 0).then_some((own_epoch, own_end));
                let point = truncation::truncation_point(
                    (epoch, end_offset),
                    follower,
                    log.log_end_offset(),
                    sent.fetch_offset,
                );
                log.truncate_to(point.offset);
                0
            }
            FetchResult::Records {
                entries,
                high_watermark,
            } => {
                if !entries.is_empty() {
                    // `Partition::append_records_as_follower`: records that answer an
                    // older position are dropped.
                    if p.replica.is_leader() || log.log_end_offset() != sent.fetch_offset {
                        fx.after(0, fetch_timer);
                        return;
                    }
                    log.append_as_follower(&entries);
                }
                log.update_high_watermark(high_watermark);
                if entries.is_empty() { FETCH_IDLE_MS } else { 0 }
            }
        };
        if next_fetch_ms > 0 {
            f.delayed_until_ms = now_ms + next_fetch_ms;
        }
        fx.after(next_fetch_ms, fetch_timer);
    }

    /// A request of this broker went unanswered: its connection is broken.
    fn on_request_timeout(&mut self, now_ms: i64, id: RequestId, fx: &mut Effects) {
        let me = self.id;
        let fetch_timer = self.timer(BrokerTimer::Fetch);
        let send_timer = self.timer(BrokerTimer::SendAlterPartition);
        let Some(p) = self.process.as_mut() else {
            return;
        };
        if let Some(f) = p.fetcher.as_mut()
            && f.in_flight.take_if(|s| s.id == id).is_some()
        {
            fx.reconnects.push(Conn {
                client: Node::Broker(me),
                server: Node::Broker(f.leader),
            });
            f.delayed_until_ms = now_ms + FETCH_BACKOFF_MS;
            fx.after(FETCH_BACKOFF_MS, fetch_timer);
        }
        let sender = &mut p.alter_partition;
        if let Some((_, proposal)) = sender.in_flight.take_if(|(sent, _)| *sent == id) {
            fx.reconnects.push(Conn {
                client: Node::Broker(me),
                server: Node::Controller,
            });
            sender.requeue(proposal);
            sender.backoff_until_ms = now_ms + ALTER_PARTITION_BACKOFF_MS;
            fx.after(ALTER_PARTITION_BACKOFF_MS, send_timer);
        }
    }

    /// `AlterPartitionManager::run`: the pending proposal goes out when nothing is in
    /// flight.
    fn send_alter_partition(&mut self, now_ms: i64, fx: &mut Effects) {
        let (me, incarnation) = (self.id, self.incarnation);
        let Some(p) = self.process.as_mut() else {
            return;
        };
        let sender = &mut p.alter_partition;
        if sender.in_flight.is_some() || now_ms < sender.backoff_until_ms {
            return;
        }
        let Some(proposal) = sender.pending.take() else {
            return;
        };
        let id = fx.request_id();
        fx.request(
            Conn {
                client: Node::Broker(me),
                server: Node::Controller,
            },
            Message::AlterPartition {
                id,
                broker: me,
                broker_epoch: p.broker_epoch,
                proposal: proposal.clone(),
            },
        );
        sender.in_flight = Some((id, proposal));
        fx.after(
            SOCKET_TIMEOUT_MS,
            broker_timer(me, incarnation, BrokerTimer::Timeout(id)),
        );
    }

    fn on_alter_partition_response(
        &mut self,
        now_ms: i64,
        id: RequestId,
        result: Result<AlterPartitionResult, ResponseError>,
        fx: &mut Effects,
    ) {
        let send_timer = self.timer(BrokerTimer::SendAlterPartition);
        let log = &mut self.log;
        let p = self.process.as_mut().expect("running");
        let Some((_, proposal)) = p.alter_partition.in_flight.take_if(|(sent, _)| *sent == id)
        else {
            return;
        };
        match result {
            Err(_) => {
                p.alter_partition.requeue(proposal);
                p.alter_partition.backoff_until_ms = now_ms + ALTER_PARTITION_BACKOFF_MS;
                fx.after(ALTER_PARTITION_BACKOFF_MS, send_timer);
            }
            Ok(result) => {
                let outcome = p.replica.on_alter_partition_result(&proposal, &result);
                if outcome.isr_changed {
                    maybe_increment_high_watermark(&p.replica, &p.live_brokers, log, now_ms);
                }
                if outcome.retry {
                    p.alter_partition.requeue(proposal);
                }
            }
        }
    }

    /// `Partition::append_records_to_leader` with acks=all; the wait is completed by
    /// [`Broker::complete_produces`].
    fn on_produce(&mut self, now_ms: i64, record: RecordId) -> Result<(), ResponseError> {
        let log = &mut self.log;
        let p = self.process.as_mut().expect("running");
        if !p.replica.is_leader() {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        if p.replica.isr.isr().len() < p.replica.effective_min_isr(MIN_INSYNC_REPLICAS) {
            return Err(ResponseError::NotEnoughReplicas);
        }
        let entry = Entry {
            epoch: p.replica.leader_epoch,
            record,
        };
        let offset = log.append_as_leader(entry);
        maybe_increment_high_watermark(&p.replica, &p.live_brokers, log, now_ms);
        p.produces.push(WaitingProduce {
            offset,
            entry,
            deadline_ms: now_ms + PRODUCE_TIMEOUT_MS,
        });
        Ok(())
    }

    /// `ReplicaManager::wait_for_replication`: acks=all requests complete once the high
    /// watermark passes them, fail when leadership moves, time out otherwise.
    fn complete_produces(&mut self, now_ms: i64, fx: &mut Effects) {
        let me = self.id;
        let Some(p) = self.process.as_mut() else {
            return;
        };
        let conn = Conn {
            client: Node::Client,
            server: Node::Broker(me),
        };
        let high_watermark = self.log.high_watermark;
        p.produces.retain(|w| {
            let (done, error) = p.replica.check_enough_replicas_reach_offset(
                w.offset + 1,
                high_watermark,
                MIN_INSYNC_REPLICAS,
            );
            let result = match (done, error) {
                (true, None) => {
                    fx.acks.push(Ack {
                        leader: me,
                        offset: w.offset,
                        entry: w.entry,
                        maximal_isr: p.replica.isr.maximal_isr(),
                    });
                    Ok(w.offset)
                }
                (_, Some(e)) => Err(e),
                (false, None) if now_ms >= w.deadline_ms => Err(ResponseError::RequestTimedOut),
                (false, None) => return true,
            };
            fx.respond(
                conn,
                Message::ProduceResponse {
                    record: w.entry.record,
                    result,
                },
            );
            false
        });
    }

    /// Housekeeping: the ISR shrink check and the high watermark checkpoint. (The
    /// ZooKeeper ping is the simulation's: it reaches the controller directly.)
    fn on_tick(&mut self, now_ms: i64, fx: &mut Effects) {
        let tick = self.timer(BrokerTimer::Tick);
        let log = &mut self.log;
        let p = self.process.as_mut().expect("running");
        if now_ms >= p.next_shrink_ms {
            p.next_shrink_ms = now_ms + REPLICA_LAG_TIME_MAX_MS / 2;
            // `Partition::maybe_shrink_isr`.
            if p.replica.is_leader()
                && !p.replica.isr.is_inflight()
                && let Some(proposal) = p.replica.maybe_shrink_isr(
                    log.log_end_offset(),
                    now_ms,
                    REPLICA_LAG_TIME_MAX_MS,
                )
            {
                p.alter_partition.pending = Some(proposal);
            }
        }
        if now_ms >= p.next_checkpoint_ms {
            p.next_checkpoint_ms = now_ms + HW_CHECKPOINT_INTERVAL_MS;
            log.high_watermark_checkpoint = log.high_watermark;
        }
        fx.after(BROKER_TICK_MS, tick);
    }
}

// --- ZooKeeper and the controller -------------------------------------------------------

/// A broker's registration under `/brokers/ids`, held by its ZooKeeper session.
struct Session {
    broker_epoch: i64,
    last_ping_ms: i64,
}

#[derive(Debug, Clone)]
enum ControllerRequest {
    LeaderAndIsr(LeaderAndIsrState),
    UpdateMetadata(BTreeSet<BrokerId>),
}

/// The controller channel's queue to one broker: in order, one request in flight, each
/// retried until answered or the broker is gone.
#[derive(Default)]
struct BrokerQueue {
    broker_epoch: i64,
    requests: VecDeque<ControllerRequest>,
    in_flight: Option<RequestId>,
}

/// The requests one controller event produces (`controller::batch`).
#[derive(Default)]
struct Batch {
    leader_and_isr: BTreeSet<BrokerId>,
    update_metadata: BTreeSet<BrokerId>,
}

struct Controller {
    epoch: i32,
    /// Requests sent to an earlier controller are lost with it.
    elected_at_ms: i64,
    /// The partition's state znode; `partition_epoch` is its version.
    partition: LeaderAndIsr,
    /// The epoch of the controller that wrote `partition`.
    partition_controller_epoch: i32,
    replicas: Vec<BrokerId>,
    sessions: BTreeMap<BrokerId, Session>,
    next_broker_epoch: i64,
    queues: BTreeMap<BrokerId, BrokerQueue>,
    elections: u64,
}

impl Controller {
    fn is_live(&self, broker: BrokerId) -> bool {
        self.sessions.contains_key(&broker)
    }

    fn live_brokers(&self) -> BTreeSet<BrokerId> {
        self.sessions.keys().copied().collect()
    }

    /// A conditional write of the state znode: its version goes up by one.
    fn write(&mut self, next: LeaderAndIsr) {
        if next.leader != self.partition.leader {
            self.elections += 1;
        }
        self.partition = LeaderAndIsr {
            partition_epoch: self.partition.partition_epoch + 1,
            ..next
        };
        self.partition_controller_epoch = self.epoch;
    }

    fn state_for_brokers(&self) -> LeaderAndIsrState {
        LeaderAndIsrState {
            controller_epoch: self.partition_controller_epoch,
            leader: self.partition.leader,
            leader_epoch: self.partition.leader_epoch,
            isr: self.partition.isr.clone(),
            partition_epoch: self.partition.partition_epoch,
            replicas: self.replicas.clone(),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            leader_recovery_state: self.partition.leader_recovery_state,
        }
    }

    /// LeaderAndIsr to the live ones of `brokers`, UpdateMetadata to every live broker.
    fn add_leader_and_isr(&self, batch: &mut Batch, brokers: &[BrokerId]) {
        for b in brokers.iter().filter(|b| self.is_live(**b)) {
            batch.leader_and_isr.insert(*b);
        }
        batch.update_metadata.extend(self.sessions.keys());
    }

    /// `elect_offline`: a partition whose leader is not live gets the first live ISR
    /// member in assignment order, or no leader.
    fn elect_offline(&mut self, batch: &mut Batch) {
        if self.is_live(self.partition.leader) {
            return;
        }
        let current = self.partition.clone();
        let next = election::offline(&current, &self.replicas, |r| self.is_live(r), false);
        let next = match next {
            Some(next) => next,
            None if current.leader >= 0 => current.new_leader_and_isr(-1, current.isr.clone()),
            None => return,
        };
        self.write(next);
        let replicas = self.replicas.clone();
        self.add_leader_and_isr(batch, &replicas);
    }

    /// `remove_dead_replicas_from_isrs`.
    fn remove_dead_replicas(&mut self, batch: &mut Batch) {
        let current = self.partition.clone();
        let dead: Vec<BrokerId> = current
            .isr
            .iter()
            .chain(std::iter::once(&current.leader).filter(|l| **l >= 0))
            .copied()
            .filter(|r| !self.is_live(*r))
            .collect();
        if dead.is_empty() {
            return;
        }
        let next = election::remove_replicas_from_isr(&current, &dead);
        if next.isr != current.isr || next.leader != current.leader {
            self.write(next);
            let replicas = self.replicas.clone();
            self.add_leader_and_isr(batch, &replicas);
        }
    }

    /// `on_brokers_failed`.
    fn on_broker_failed(&mut self, broker: BrokerId, batch: &mut Batch) {
        self.sessions.remove(&broker);
        self.queues.remove(&broker);
        if self.partition.leader == broker {
            self.elect_offline(batch);
        }
        self.remove_dead_replicas(batch);
        batch.update_metadata.extend(self.sessions.keys());
    }

    /// `on_brokers_started`.
    fn on_broker_started(&mut self, broker: BrokerId, batch: &mut Batch) {
        batch.update_metadata.extend(self.sessions.keys());
        self.add_leader_and_isr(batch, &[broker]);
        self.elect_offline(batch);
        self.remove_dead_replicas(batch);
    }

    /// A broker's ZooKeeper ping. A session that timed out is gone (the broker is dead
    /// to the controller) and the broker registers anew; returns its new broker epoch.
    fn ping(
        &mut self,
        broker: BrokerId,
        broker_epoch: i64,
        now_ms: i64,
        fx: &mut Effects,
    ) -> Option<i64> {
        let mut batch = Batch::default();
        let registered = match self.sessions.get_mut(&broker) {
            Some(s) if now_ms - s.last_ping_ms > SESSION_TIMEOUT_MS => {
                self.on_broker_failed(broker, &mut batch);
                Some(self.register(broker, now_ms, &mut batch))
            }
            Some(s) if s.broker_epoch == broker_epoch => {
                s.last_ping_ms = now_ms;
                None
            }
            // Another incarnation's session holds the registration until it expires.
            Some(_) => None,
            None => Some(self.register(broker, now_ms, &mut batch)),
        };
        self.flush(batch, fx);
        registered
    }

    fn register(&mut self, broker: BrokerId, now_ms: i64, batch: &mut Batch) -> i64 {
        self.next_broker_epoch += 1;
        let broker_epoch = self.next_broker_epoch;
        self.sessions.insert(
            broker,
            Session {
                broker_epoch,
                last_ping_ms: now_ms,
            },
        );
        self.queues.insert(
            broker,
            BrokerQueue {
                broker_epoch,
                ..BrokerQueue::default()
            },
        );
        self.on_broker_started(broker, batch);
        broker_epoch
    }

    /// Session expiry, and partitions without a live leader (`on_tick`).
    fn tick(&mut self, now_ms: i64, fx: &mut Effects) {
        let mut batch = Batch::default();
        let expired: Vec<BrokerId> = self
            .sessions
            .iter()
            .filter(|(_, s)| now_ms - s.last_ping_ms > SESSION_TIMEOUT_MS)
            .map(|(b, _)| *b)
            .collect();
        for b in expired {
            self.on_broker_failed(b, &mut batch);
        }
        if !self.is_live(self.partition.leader) {
            self.elect_offline(&mut batch);
            self.remove_dead_replicas(&mut batch);
        }
        self.flush(batch, fx);
    }

    /// `processAlterPartition` (`controller::event_loop::requests::alter_partition`).
    fn alter_partition(
        &mut self,
        broker: BrokerId,
        broker_epoch: i64,
        proposal: &AlterPartitionProposal,
        fx: &mut Effects,
    ) -> Result<AlterPartitionResult, ResponseError> {
        let epoch_ok = self
            .sessions
            .get(&broker)
            .is_some_and(|s| broker_epoch == -1 || s.broker_epoch <= broker_epoch);
        if !epoch_ok {
            return Err(ResponseError::StaleBrokerEpoch);
        }
        let current = &self.partition;
        let committed = |state: &LeaderAndIsr| AlterPartitionResult::Committed {
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            isr: state.isr.clone(),
            leader_recovery_state: state.leader_recovery_state,
        };
        let failed = |e| Ok(AlterPartitionResult::Failed(e));
        if current.leader != broker {
            return failed(ResponseError::NotLeaderOrFollower);
        }
        if proposal.leader_epoch != current.leader_epoch {
            return failed(ResponseError::FencedLeaderEpoch);
        }
        if proposal.new_isr == current.isr
            && proposal.leader_recovery_state == current.leader_recovery_state
        {
            return Ok(committed(current));
        }
        if proposal.partition_epoch != current.partition_epoch {
            return failed(ResponseError::InvalidUpdateVersion);
        }
        if proposal.leader_recovery_state == 1 && current.leader_recovery_state == 0 {
            return failed(ResponseError::InvalidRequest);
        }
        let ineligible = proposal
            .new_isr
            .iter()
            .any(|r| !self.replicas.contains(r) || !self.is_live(*r));
        if ineligible {
            return failed(ResponseError::IneligibleReplica);
        }
        self.write(LeaderAndIsr {
            leader: broker,
            leader_epoch: proposal.leader_epoch,
            isr: proposal.new_isr.clone(),
            leader_recovery_state: proposal.leader_recovery_state,
            partition_epoch: proposal.partition_epoch,
        });
        let mut batch = Batch::default();
        batch.update_metadata.extend(self.sessions.keys());
        self.flush(batch, fx);
        Ok(committed(&self.partition))
    }

    /// A new controller: a new epoch, new channels, every broker told everything, then
    /// partitions brought online (`on_failover` → `start_cluster`).
    fn fail_over(&mut self, now_ms: i64, fx: &mut Effects) {
        self.epoch += 1;
        self.elected_at_ms = now_ms;
        self.queues = self
            .sessions
            .iter()
            .map(|(b, s)| {
                let queue = BrokerQueue {
                    broker_epoch: s.broker_epoch,
                    ..BrokerQueue::default()
                };
                (*b, queue)
            })
            .collect();
        let mut batch = Batch::default();
        let replicas = self.replicas.clone();
        self.add_leader_and_isr(&mut batch, &replicas);
        self.elect_offline(&mut batch);
        self.remove_dead_replicas(&mut batch);
        self.flush(batch, fx);
    }

    /// Queues a batch's requests, in Kafka's order, with the state as it is now.
    fn flush(&mut self, batch: Batch, fx: &mut Effects) {
        let live = self.live_brokers();
        let state = self.state_for_brokers();
        let brokers: Vec<BrokerId> = self.queues.keys().copied().collect();
        for b in brokers {
            let queue = self.queues.get_mut(&b).expect("queue");
            if batch.leader_and_isr.contains(&b) {
                queue
                    .requests
                    .push_back(ControllerRequest::LeaderAndIsr(state.clone()));
            }
            if batch.update_metadata.contains(&b) {
                queue
                    .requests
                    .push_back(ControllerRequest::UpdateMetadata(live.clone()));
            }
            self.pump(b, fx);
        }
    }

    /// Sends the head of a broker's queue if nothing is in flight.
    fn pump(&mut self, broker: BrokerId, fx: &mut Effects) {
        let epoch = self.epoch;
        let Some(queue) = self.queues.get_mut(&broker) else {
            return;
        };
        if queue.in_flight.is_some() {
            return;
        }
        let Some(request) = queue.requests.front() else {
            return;
        };
        let id = fx.request_id();
        let message = match request {
            ControllerRequest::LeaderAndIsr(state) => Message::LeaderAndIsr {
                id,
                controller_epoch: epoch,
                broker_epoch: queue.broker_epoch,
                state: state.clone(),
            },
            ControllerRequest::UpdateMetadata(live) => Message::UpdateMetadata {
                id,
                controller_epoch: epoch,
                broker_epoch: queue.broker_epoch,
                live_brokers: live.clone(),
            },
        };
        queue.in_flight = Some(id);
        fx.request(
            Conn {
                client: Node::Controller,
                server: Node::Broker(broker),
            },
            message,
        );
        fx.after(SOCKET_TIMEOUT_MS, Event::ControllerTimeout { broker, id });
    }

    fn on_response(&mut self, broker: BrokerId, id: RequestId, fx: &mut Effects) {
        if let Some(queue) = self.queues.get_mut(&broker)
            && queue.in_flight == Some(id)
        {
            queue.in_flight = None;
            queue.requests.pop_front();
            self.pump(broker, fx);
        }
    }

    /// Retried on a new connection, until answered or the broker is gone.
    fn on_timeout(&mut self, broker: BrokerId, id: RequestId, fx: &mut Effects) {
        if let Some(queue) = self.queues.get_mut(&broker)
            && queue.in_flight == Some(id)
        {
            queue.in_flight = None;
            fx.reconnects.push(Conn {
                client: Node::Controller,
                server: Node::Broker(broker),
            });
            self.pump(broker, fx);
        }
    }
}

// --- The producer -----------------------------------------------------------------------

/// An acks=all producer that sends each record once (`retries=0`): a lost request or
/// answer leaves the record unacknowledged.
#[derive(Default)]
struct Client {
    next_record: RecordId,
    acked: u64,
    last_acked: Option<RecordId>,
}

// --- Invariants -------------------------------------------------------------------------

#[derive(Default)]
struct Checker {
    /// The longest prefix any replica had below its high watermark: what is committed.
    committed: Vec<Entry>,
    /// How many leading entries of each broker's log agree with `committed`.
    agreed: BTreeMap<BrokerId, usize>,
    /// Records acknowledged to the producer, by offset, and how many were checked.
    acked: Vec<(i64, Entry)>,
    acked_checked: usize,
    /// The `(leader epoch, high watermark)` each broker last had as leader.
    leader_high_watermarks: BTreeMap<BrokerId, (i32, i64)>,
    /// The first violation seen at an acknowledgment, reported after the step.
    violation: Option<String>,
}

impl Checker {
    /// Invariant 6, at the moment of the acknowledgment.
    fn on_ack(&mut self, ack: Ack, brokers: &BTreeMap<BrokerId, Broker>) {
        let min = usize::try_from(MIN_INSYNC_REPLICAS).expect("positive");
        if ack.maximal_isr.len() < min {
            self.violation.get_or_insert(format!(
                "(6) b{} acknowledged {} at {} with ISR {:?}, below min.insync.replicas",
                ack.leader, ack.entry, ack.offset, ack.maximal_isr
            ));
        }
        // Replicas that received the record: it is in their log, or was until a power
        // failure took what the OS had not written back.
        let received = |log: &[Entry]| log.get(index_of(ack.offset)) == Some(&ack.entry);
        let copies = brokers
            .values()
            .filter(|b| {
                received(&b.log.entries)
                    || b.log_before_power_failure.as_deref().is_some_and(received)
            })
            .count();
        if copies < min {
            self.violation.get_or_insert(format!(
                "(6) b{} acknowledged {} at {}, received by {copies} replicas",
                ack.leader, ack.entry, ack.offset
            ));
        }
        self.acked.push((ack.offset, ack.entry));
    }

    fn check(
        &mut self,
        brokers: &mut BTreeMap<BrokerId, Broker>,
        controller: &Controller,
    ) -> Result<(), String> {
        if let Some(violation) = self.violation.take() {
            return Err(violation);
        }
        self.check_committed_prefix(brokers)?;
        self.check_acknowledged()?;
        self.check_isr_members(brokers, controller)?;
        self.check_leaders(brokers, controller)?;
        check_controller_state(controller)
    }

    /// Invariant 3: one committed prefix, never truncated below a high watermark.
    fn check_committed_prefix(
        &mut self,
        brokers: &mut BTreeMap<BrokerId, Broker>,
    ) -> Result<(), String> {
        for (id, broker) in brokers.iter_mut() {
            let log = &mut broker.log;
            if let Some((to, high_watermark)) = log.truncated_below_high_watermark.take() {
                return Err(format!(
                    "(3) b{id} truncated its log to {to}, below its high watermark {high_watermark}"
                ));
            }
            let agreed = self.agreed.entry(*id).or_default();
            if let Some(len) = log.cut_to.take() {
                *agreed = (*agreed).min(len);
            }
            if broker.process.is_none() {
                continue;
            }
            let high_watermark = index_of(log.high_watermark);
            while *agreed < high_watermark.min(self.committed.len())
                && log.entries[*agreed] == self.committed[*agreed]
            {
                *agreed += 1;
            }
            if high_watermark > *agreed {
                if *agreed < self.committed.len() {
                    return Err(format!(
                        "(3) below b{id}'s high watermark {high_watermark}, offset {} is {} where {} was committed",
                        *agreed, log.entries[*agreed], self.committed[*agreed]
                    ));
                }
                self.committed
                    .extend_from_slice(&log.entries[self.committed.len()..high_watermark]);
                *agreed = high_watermark;
            }
        }
        Ok(())
    }

    /// Invariant 1, first half: an acknowledged record is committed where it was
    /// acknowledged.
    fn check_acknowledged(&mut self) -> Result<(), String> {
        for (offset, entry) in &self.acked[self.acked_checked..] {
            let committed = self.committed.get(index_of(*offset));
            if committed != Some(entry) {
                return Err(format!(
                    "(1) {entry} was acknowledged at {offset}, but {} is committed there",
                    committed.map_or("nothing".to_string(), Entry::to_string)
                ));
            }
        }
        self.acked_checked = self.acked.len();
        Ok(())
    }

    /// Invariant 1, second half: every ISR member (every possible next leader) holds
    /// every committed record. A crashed member is checked when it is back.
    fn check_isr_members(
        &mut self,
        brokers: &BTreeMap<BrokerId, Broker>,
        controller: &Controller,
    ) -> Result<(), String> {
        for id in &controller.partition.isr {
            let broker = &brokers[id];
            if broker.process.is_none() {
                continue;
            }
            let agreed = self.agreed.entry(*id).or_default();
            let log = &broker.log.entries;
            while *agreed < log.len().min(self.committed.len())
                && log[*agreed] == self.committed[*agreed]
            {
                *agreed += 1;
            }
            if *agreed < self.committed.len() {
                let has = log
                    .get(*agreed)
                    .map_or("nothing".to_string(), Entry::to_string);
                return Err(format!(
                    "(1) ISR member b{id} has {has} at {}, where {} is committed",
                    *agreed, self.committed[*agreed]
                ));
            }
        }
        Ok(())
    }

    /// Invariants 2, 4 and 7.
    fn check_leaders(
        &mut self,
        brokers: &BTreeMap<BrokerId, Broker>,
        controller: &Controller,
    ) -> Result<(), String> {
        let mut current_leaders = Vec::new();
        for (id, broker) in brokers {
            let Some(p) = &broker.process else {
                self.leader_high_watermarks.remove(id);
                continue;
            };
            if !p.replica.is_leader() {
                self.leader_high_watermarks.remove(id);
                continue;
            }
            let epoch = p.replica.leader_epoch;
            let high_watermark = broker.log.high_watermark;
            if let Some((last_epoch, last)) = self.leader_high_watermarks.get(id)
                && *last_epoch == epoch
                && high_watermark < *last
            {
                return Err(format!(
                    "(2) b{id}'s high watermark went back from {last} to {high_watermark} in epoch {epoch}"
                ));
            }
            self.leader_high_watermarks
                .insert(*id, (epoch, high_watermark));
            for member in p.replica.isr.maximal_isr() {
                let other = &brokers[&member];
                if other.process.is_none() || other.log_before_power_failure.is_some() {
                    continue;
                }
                let end = other.log.log_end_offset();
                if high_watermark > end {
                    return Err(format!(
                        "(2) b{id}'s high watermark {high_watermark} (epoch {epoch}) is past the log end {end} of ISR member b{member}"
                    ));
                }
            }
            if epoch == controller.partition.leader_epoch {
                current_leaders.push(*id);
                let waits_for = p.replica.isr.maximal_isr();
                if let Some(member) = controller
                    .partition
                    .isr
                    .iter()
                    .find(|m| !waits_for.contains(m))
                {
                    return Err(format!(
                        "(7) the controller's ISR {:?} has b{member}, but leader b{id} waits for {waits_for:?} only",
                        controller.partition.isr
                    ));
                }
            }
        }
        match current_leaders.as_slice() {
            [] => Ok(()),
            [one] if *one == controller.partition.leader => Ok(()),
            leaders => Err(format!(
                "(4) brokers {leaders:?} lead at epoch {}, whose leader is {}",
                controller.partition.leader_epoch, controller.partition.leader
            )),
        }
    }
}

/// Invariant 5.
fn check_controller_state(controller: &Controller) -> Result<(), String> {
    let state = &controller.partition;
    let distinct: BTreeSet<&BrokerId> = state.isr.iter().collect();
    if state.isr.is_empty()
        || distinct.len() != state.isr.len()
        || !state.isr.iter().all(|r| controller.replicas.contains(r))
        || (state.leader >= 0 && !state.isr.contains(&state.leader))
    {
        return Err(format!(
            "(5) the controller's state has leader {} and ISR {:?}",
            state.leader, state.isr
        ));
    }
    Ok(())
}

// --- The simulation ---------------------------------------------------------------------

/// What injects faults, and what it must respect.
struct Nemesis {
    enabled: bool,
    active: usize,
    /// A broker that lost unflushed records, with the broker epoch whose session must
    /// expire before anything else may end a session.
    power_failure: Option<(BrokerId, i64)>,
    injected: u64,
}

struct Failure {
    step: u64,
    now_ms: i64,
    reason: String,
    state: String,
    trace: Vec<String>,
}

impl Failure {
    fn report(&self, seed: u64) -> String {
        let mut out = format!(
            "seed {seed} failed at step {} ({} ms): {}\n\nstate:\n{}\n",
            self.step, self.now_ms, self.reason, self.state
        );
        if !self.trace.is_empty() {
            out.push_str(&format!(
                "\nlast {} events (the producer's left out):\n",
                self.trace.len()
            ));
            for line in &self.trace {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str(&format!(
            "\nreplay: STRATA_SIM_SEED={seed} cargo test -p strata-broker --test replication_sim\n"
        ));
        out
    }
}

/// What one seed did, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Summary {
    steps: u64,
    now_ms: i64,
    acked: u64,
    committed: usize,
    faults: u64,
    elections: u64,
}

struct Sim {
    rng: StdRng,
    now_ms: i64,
    seq: u64,
    steps: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    next_request_id: RequestId,
    network: Network,
    controller: Controller,
    brokers: BTreeMap<BrokerId, Broker>,
    client: Client,
    checker: Checker,
    nemesis: Nemesis,
    /// The last events, when tracing.
    trace: Option<VecDeque<String>>,
}

impl Sim {
    /// A cluster whose three brokers are registered and whose partition was just created:
    /// broker 1 leads epoch 0 with every replica in the ISR.
    fn new(seed: u64, trace: bool) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let loss = rng.random_range(0.0..MAX_MESSAGE_LOSS);
        let mut sim = Sim {
            rng,
            now_ms: 0,
            seq: 0,
            steps: 0,
            queue: BinaryHeap::new(),
            next_request_id: 0,
            network: Network {
                loss,
                ..Network::default()
            },
            controller: Controller {
                epoch: 1,
                elected_at_ms: 0,
                partition: LeaderAndIsr::initial(BROKERS[0], BROKERS.to_vec()),
                partition_controller_epoch: 1,
                replicas: BROKERS.to_vec(),
                sessions: BTreeMap::new(),
                next_broker_epoch: 100,
                queues: BTreeMap::new(),
                elections: 0,
            },
            brokers: BROKERS.iter().map(|id| (*id, Broker::new(*id))).collect(),
            client: Client::default(),
            checker: Checker::default(),
            nemesis: Nemesis {
                enabled: true,
                active: 0,
                power_failure: None,
                injected: 0,
            },
            trace: trace.then(VecDeque::new),
        };
        for id in BROKERS {
            sim.controller.next_broker_epoch += 1;
            let broker_epoch = sim.controller.next_broker_epoch;
            sim.controller.sessions.insert(
                id,
                Session {
                    broker_epoch,
                    last_ping_ms: 0,
                },
            );
            sim.controller.queues.insert(
                id,
                BrokerQueue {
                    broker_epoch,
                    ..BrokerQueue::default()
                },
            );
            let broker = sim.brokers.get_mut(&id).expect("broker");
            broker.process = Some(Process::new(id, broker_epoch, 0));
            let tick = broker.timer(BrokerTimer::Tick);
            let first_tick_ms = sim.rng.random_range(0..BROKER_TICK_MS);
            sim.schedule(first_tick_ms, tick);
        }
        let mut fx = sim.effects();
        let mut batch = Batch::default();
        sim.controller.add_leader_and_isr(&mut batch, &BROKERS);
        sim.controller.flush(batch, &mut fx);
        sim.apply(fx);
        sim.schedule(CONTROLLER_TICK_MS, Event::ControllerTick);
        sim.schedule(WRITEBACK_INTERVAL_MS, Event::Writeback);
        sim.schedule(50, Event::Produce);
        sim.schedule(500, Event::Nemesis);
        sim
    }

    /// `steps` events with faults, then everything heals and the cluster must become
    /// whole again.
    fn run(&mut self, steps: u64) -> Result<Summary, Failure> {
        while self.steps < steps {
            self.step()?;
        }
        self.heal_everything();
        let first_record = self.client.next_record + 1;
        let deadline_ms = self.now_ms + LIVENESS_TIMEOUT_MS;
        while !self.is_whole(first_record) {
            if self.now_ms > deadline_ms {
                return Err(self.failure(format!(
                    "liveness: {LIVENESS_TIMEOUT_MS} ms after the faults healed the partition has no leader with the full ISR acknowledging new records"
                )));
            }
            self.step()?;
        }
        Ok(Summary {
            steps: self.steps,
            now_ms: self.now_ms,
            acked: self.client.acked,
            committed: self.checker.committed.len(),
            faults: self.nemesis.injected,
            elections: self.controller.elections,
        })
    }

    fn step(&mut self) -> Result<(), Failure> {
        let Reverse(next) = self.queue.pop().expect("periodic events never run out");
        self.now_ms = next.at_ms;
        self.steps += 1;
        if self.trace.is_some() && self.is_worth_tracing(&next.event) {
            let line = format!("{:>6} ms  {}", self.now_ms, next.event);
            self.note(line);
        }
        self.handle(next.event);
        if let Err(reason) = self.checker.check(&mut self.brokers, &self.controller) {
            return Err(self.failure(reason));
        }
        // A broker back in the ISR has caught up: what it lost in a power failure is
        // history.
        for id in &self.controller.partition.isr {
            let broker = self.brokers.get_mut(id).expect("broker");
            if broker.process.is_some() {
                broker.log_before_power_failure = None;
            }
        }
        Ok(())
    }

    /// Replication and controller messages, faults, and timeouts of requests still
    /// waiting; not housekeeping, and not the producer's traffic, which would crowd out
    /// the rest.
    fn is_worth_tracing(&self, event: &Event) -> bool {
        match event {
            Event::Deliver(envelope) => envelope.conn.client != Node::Client,
            Event::Heal(_) => true,
            Event::Broker {
                broker,
                timer: BrokerTimer::Timeout(id),
                ..
            } => self.brokers[broker].process.as_ref().is_some_and(|p| {
                p.fetcher
                    .as_ref()
                    .is_some_and(|f| f.in_flight.is_some_and(|s| s.id == *id))
                    || p.alter_partition
                        .in_flight
                        .as_ref()
                        .is_some_and(|(sent, _)| sent == id)
            }),
            Event::ControllerTimeout { broker, id } => self
                .controller
                .queues
                .get(broker)
                .is_some_and(|q| q.in_flight == Some(*id)),
            _ => false,
        }
    }

    fn failure(&self, reason: String) -> Failure {
        Failure {
            step: self.steps,
            now_ms: self.now_ms,
            reason,
            state: self.describe(),
            trace: self
                .trace
                .as_ref()
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    fn note(&mut self, line: String) {
        if let Some(trace) = &mut self.trace {
            if trace.len() == TRACE_LINES {
                trace.pop_front();
            }
            trace.push_back(line);
        }
    }

    fn note_fault(&mut self, what: String) {
        if self.trace.is_some() {
            self.note(format!("{:>6} ms  fault: {what}", self.now_ms));
        }
    }

    fn note_undelivered(&mut self, envelope: &Envelope, why: &str) {
        if self.trace.is_some() && envelope.conn.client != Node::Client {
            self.note(format!("          ({why})"));
        }
    }

    fn schedule(&mut self, delay_ms: i64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at_ms: self.now_ms + delay_ms,
            seq: self.seq,
            event,
        }));
    }

    fn effects(&self) -> Effects {
        Effects::new(self.next_request_id)
    }

    fn apply(&mut self, fx: Effects) {
        self.next_request_id = fx.next_request_id;
        for conn in fx.reconnects {
            self.network.reconnect(conn);
        }
        for (conn, to_server, message) in fx.sends {
            self.send(conn, to_server, message);
        }
        for (delay_ms, event) in fx.timers {
            self.schedule(delay_ms, event);
        }
        for ack in fx.acks {
            self.checker.on_ack(ack, &self.brokers);
        }
    }

    /// Puts a message on the wire: lost (breaking nothing but itself: the sender's timeout
    /// notices), or delivered after a delay, in order on its connection.
    fn send(&mut self, conn: Conn, to_server: bool, message: Message) {
        let (from, to) = if to_server {
            (conn.client, conn.server)
        } else {
            (conn.server, conn.client)
        };
        if !self.network.connected(from, to) || self.rng.random_bool(self.network.loss) {
            if self.trace.is_some() && conn.client != Node::Client {
                self.note(format!(
                    "{:>6} ms  lost: {from} → {to}: {message}",
                    self.now_ms
                ));
            }
            return;
        }
        let delay_ms = if !self.network.calm && self.rng.random_ratio(1, 30) {
            self.rng.random_range(10..MAX_NETWORK_DELAY_MS)
        } else {
            self.rng.random_range(1..10)
        };
        let connection = self.network.connections.entry(conn).or_default();
        let direction = usize::from(!to_server);
        let at_ms = (self.now_ms + delay_ms).max(connection.last_delivery_ms[direction]);
        connection.last_delivery_ms[direction] = at_ms;
        let envelope = Envelope {
            conn,
            to_server,
            generation: connection.generation,
            sent_ms: self.now_ms,
            message,
        };
        self.schedule(at_ms - self.now_ms, Event::Deliver(envelope));
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver(envelope) => self.deliver(envelope),
            Event::Broker {
                broker,
                incarnation,
                timer,
            } => {
                let b = self.brokers.get_mut(&broker).expect("broker");
                if b.incarnation != incarnation {
                    return;
                }
                if b.status == Status::Paused {
                    b.stash.push(event);
                    return;
                }
                if let BrokerTimer::Tick = timer {
                    self.ping(broker);
                }
                let mut fx = self.effects();
                let b = self.brokers.get_mut(&broker).expect("broker");
                b.on_timer(self.now_ms, timer, &mut fx);
                self.apply(fx);
            }
            Event::ControllerTick => {
                let mut fx = self.effects();
                self.controller.tick(self.now_ms, &mut fx);
                self.apply(fx);
                self.schedule(CONTROLLER_TICK_MS, Event::ControllerTick);
            }
            Event::ControllerTimeout { broker, id } => {
                let mut fx = self.effects();
                self.controller.on_timeout(broker, id, &mut fx);
                self.apply(fx);
            }
            Event::Writeback => {
                for broker in self.brokers.values_mut() {
                    if self.rng.random_ratio(1, 3) {
                        broker.log.flushed = broker.log.entries.len();
                    }
                }
                self.schedule(WRITEBACK_INTERVAL_MS, Event::Writeback);
            }
            Event::Produce => self.produce(),
            Event::Nemesis => self.inject_fault(),
            Event::Heal(heal) => self.heal(heal),
            Event::RefreshMetadata => {
                let mut fx = self.effects();
                let mut batch = Batch::default();
                batch
                    .update_metadata
                    .extend(self.controller.sessions.keys());
                self.controller.flush(batch, &mut fx);
                self.apply(fx);
            }
        }
    }

    /// A ZooKeeper ping, when the broker can reach ZooKeeper.
    fn ping(&mut self, broker: BrokerId) {
        if !self
            .network
            .connected(Node::Broker(broker), Node::Controller)
        {
            return;
        }
        let Some(p) = &self.brokers[&broker].process else {
            return;
        };
        let mut fx = self.effects();
        let registered = self
            .controller
            .ping(broker, p.broker_epoch, self.now_ms, &mut fx);
        if let Some(broker_epoch) = registered {
            let p = self
                .brokers
                .get_mut(&broker)
                .and_then(|b| b.process.as_mut());
            p.expect("running").broker_epoch = broker_epoch;
        }
        self.apply(fx);
    }

    fn deliver(&mut self, envelope: Envelope) {
        let (from, to) = (envelope.from(), envelope.to());
        if !self.network.connected(from, to) {
            self.note_undelivered(&envelope, "lost: the link is cut");
            return;
        }
        if !envelope.to_server && self.network.generation(envelope.conn) != envelope.generation {
            self.note_undelivered(&envelope, "dropped: the client closed that connection");
            return;
        }
        let mut fx = self.effects();
        match to {
            Node::Broker(id) => {
                let broker = self.brokers.get_mut(&id).expect("broker");
                match broker.status {
                    Status::Crashed => {
                        self.note_undelivered(&envelope, "lost: the broker is down");
                        return;
                    }
                    Status::Paused => {
                        broker.stash.push(Event::Deliver(envelope));
                        return;
                    }
                    Status::Running => broker.on_message(self.now_ms, envelope, &mut fx),
                }
            }
            Node::Controller => match envelope.message {
                Message::AlterPartition {
                    id,
                    broker,
                    broker_epoch,
                    proposal,
                } => {
                    if envelope.sent_ms < self.controller.elected_at_ms {
                        return; // sent to the controller that is gone
                    }
                    let result =
                        self.controller
                            .alter_partition(broker, broker_epoch, &proposal, &mut fx);
                    fx.respond(
                        envelope.conn,
                        Message::AlterPartitionResponse { id, result },
                    );
                }
                Message::ControllerResponse { id } => {
                    let Node::Broker(broker) = from else {
                        unreachable!("controller requests go to brokers")
                    };
                    self.controller.on_response(broker, id, &mut fx);
                }
                other => unreachable!("not sent to the controller: {other}"),
            },
            Node::Client => {
                if let Message::ProduceResponse {
                    record,
                    result: Ok(_),
                } = envelope.message
                {
                    self.client.acked += 1;
                    self.client.last_acked = self.client.last_acked.max(Some(record));
                }
            }
        }
        self.apply(fx);
    }

    /// The producer sends its next record, mostly to the leader the controller names,
    /// sometimes to any broker (as a client with stale metadata would).
    fn produce(&mut self) {
        let delay_ms = self.rng.random_range(5..40);
        self.schedule(delay_ms, Event::Produce);
        let leader = self.controller.partition.leader;
        let target = if leader >= 0 && self.rng.random_ratio(4, 5) {
            leader
        } else {
            BROKERS[self.rng.random_range(0..BROKERS.len())]
        };
        self.client.next_record += 1;
        let message = Message::Produce {
            record: self.client.next_record,
        };
        let conn = Conn {
            client: Node::Client,
            server: Node::Broker(target),
        };
        self.send(conn, true, message);
    }

    // --- Faults -------------------------------------------------------------------------

    fn inject_fault(&mut self) {
        if !self.nemesis.enabled {
            return;
        }
        let delay_ms = self.rng.random_range(100..800);
        self.schedule(delay_ms, Event::Nemesis);
        if let Some((broker, broker_epoch)) = self.nemesis.power_failure
            && self
                .controller
                .sessions
                .get(&broker)
                .is_none_or(|s| s.broker_epoch != broker_epoch)
        {
            self.nemesis.power_failure = None;
        }
        if self.nemesis.active >= MAX_ACTIVE_FAULTS {
            return;
        }
        let b = BROKERS[self.rng.random_range(0..BROKERS.len())];
        let other = loop {
            let o = BROKERS[self.rng.random_range(0..BROKERS.len())];
            if o != b {
                break o;
            }
        };
        let running = self.brokers[&b].status == Status::Running;
        let sessions_may_end = self.nemesis.power_failure.is_none();
        let duration_ms = self.rng.random_range(100..3_000);
        match self.rng.random_range(0..100) {
            0..15 if running && sessions_may_end => self.crash(b, false),
            15..20 if self.is_healthy() => self.crash(b, true),
            20..35 if running && sessions_may_end => {
                let pause_ms = self.rng.random_range(100..1_500);
                self.note_fault(format!("b{b} pauses for {pause_ms} ms"));
                self.brokers.get_mut(&b).expect("broker").status = Status::Paused;
                self.nemesis.active += 1;
                self.schedule(pause_ms, Event::Heal(Heal::Resume(b)));
            }
            35..50 if sessions_may_end => {
                let mut links: Vec<(Node, Node)> = BROKERS
                    .iter()
                    .filter(|o| **o != b)
                    .map(|o| link(Node::Broker(b), Node::Broker(*o)))
                    .collect();
                links.push(link(Node::Broker(b), Node::Controller));
                self.cut(format!("b{b} is cut off"), links, duration_ms);
            }
            50..70 => {
                let l = link(Node::Broker(b), Node::Broker(other));
                self.cut(
                    format!("b{b} and b{other} are cut apart"),
                    vec![l],
                    duration_ms,
                );
            }
            70..85 if sessions_may_end => {
                let l = link(Node::Broker(b), Node::Controller);
                self.cut(format!("b{b} is cut off ZooKeeper"), vec![l], duration_ms);
            }
            85..95 => {
                self.note_fault("the controller fails over".to_string());
                self.nemesis.injected += 1;
                let mut fx = self.effects();
                self.controller.fail_over(self.now_ms, &mut fx);
                self.apply(fx);
            }
            _ => {}
        }
    }

    /// Every broker running, registered and in the ISR, and no fault in force.
    fn is_healthy(&self) -> bool {
        self.nemesis.active == 0
            && self.network.cut.is_empty()
            && BROKERS.iter().all(|b| {
                self.brokers[b].status == Status::Running
                    && self.controller.is_live(*b)
                    && self.controller.partition.isr.contains(b)
            })
    }

    fn crash(&mut self, id: BrokerId, power_failure: bool) {
        let how = if power_failure {
            "loses power"
        } else {
            "crashes"
        };
        self.note_fault(format!("b{id} {how}"));
        let broker = self.brokers.get_mut(&id).expect("broker");
        broker.status = Status::Crashed;
        broker.process = None;
        broker.stash.clear();
        broker.incarnation += 1;
        if power_failure {
            broker.log_before_power_failure = Some(broker.log.entries.clone());
            broker.log.lose_unflushed();
            let broker_epoch = self.controller.sessions[&id].broker_epoch;
            self.nemesis.power_failure = Some((id, broker_epoch));
        }
        self.nemesis.active += 1;
        self.nemesis.injected += 1;
        let down_ms = self
            .rng
            .random_range(SESSION_TIMEOUT_MS..SESSION_TIMEOUT_MS * 5);
        self.schedule(down_ms, Event::Heal(Heal::Restart(id)));
    }

    fn cut(&mut self, what: String, links: Vec<(Node, Node)>, duration_ms: i64) {
        self.note_fault(format!("{what} for {duration_ms} ms"));
        self.network.cut_links(&links);
        self.nemesis.active += 1;
        self.nemesis.injected += 1;
        self.schedule(duration_ms, Event::Heal(Heal::Reconnect(links)));
    }

    fn heal(&mut self, heal: Heal) {
        match heal {
            Heal::Resume(id) => {
                let broker = self.brokers.get_mut(&id).expect("broker");
                if broker.status != Status::Paused {
                    return;
                }
                broker.status = Status::Running;
                let stash = std::mem::take(&mut broker.stash);
                for event in stash {
                    self.schedule(0, event);
                }
                self.nemesis.active = self.nemesis.active.saturating_sub(1);
            }
            Heal::Restart(id) => {
                if self.brokers[&id].status != Status::Crashed {
                    return;
                }
                // The old registration must expire before the broker can register again.
                if self.controller.is_live(id) {
                    self.schedule(CONTROLLER_TICK_MS, Event::Heal(Heal::Restart(id)));
                    return;
                }
                let broker = self.brokers.get_mut(&id).expect("broker");
                broker.status = Status::Running;
                broker.log.recover();
                broker.process = Some(Process::new(id, -1, self.now_ms));
                let tick = broker.timer(BrokerTimer::Tick);
                self.schedule(0, tick);
                self.nemesis.active = self.nemesis.active.saturating_sub(1);
            }
            Heal::Reconnect(links) => {
                self.network.heal_links(&links);
                self.nemesis.active = self.nemesis.active.saturating_sub(1);
            }
        }
    }

    /// The end of the faults: processes resume or restart, links come back, nothing is
    /// lost any more.
    fn heal_everything(&mut self) {
        if self.trace.is_some() {
            self.note(format!("{:>6} ms  every fault heals", self.now_ms));
        }
        self.nemesis.enabled = false;
        self.network.loss = 0.0;
        self.network.calm = true;
        self.network.cut.clear();
        self.schedule(MAX_NETWORK_DELAY_MS, Event::RefreshMetadata);
        for id in BROKERS {
            match self.brokers[&id].status {
                Status::Paused => self.heal(Heal::Resume(id)),
                Status::Crashed => self.schedule(0, Event::Heal(Heal::Restart(id))),
                Status::Running => {}
            }
        }
    }

    /// The partition has a leader with every replica in its ISR, and a record produced
    /// after `first_record` was acknowledged.
    fn is_whole(&self, first_record: RecordId) -> bool {
        let state = &self.controller.partition;
        let leads = self
            .brokers
            .get(&state.leader)
            .and_then(|b| b.process.as_ref())
            .is_some_and(|p| {
                p.replica.is_leader()
                    && p.replica.leader_epoch == state.leader_epoch
                    && !p.replica.isr.is_inflight()
                    && p.replica.isr.isr().len() == BROKERS.len()
            });
        leads
            && state.isr.len() == BROKERS.len()
            && self.client.last_acked.is_some_and(|r| r >= first_record)
    }

    fn describe(&self) -> String {
        let c = &self.controller;
        let mut out = format!(
            "  controller epoch {}: leader {}, leader epoch {}, ISR {:?}, partition epoch {}; live {:?}\n",
            c.epoch,
            c.partition.leader,
            c.partition.leader_epoch,
            c.partition.isr,
            c.partition.partition_epoch,
            c.live_brokers()
        );
        for (id, q) in &c.queues {
            out.push_str(&format!(
                "  controller → b{id}: {} queued, in flight {:?}\n",
                q.requests.len(),
                q.in_flight
            ));
        }
        for (id, b) in &self.brokers {
            let log = &b.log;
            let tail: Vec<String> = log
                .entries
                .iter()
                .enumerate()
                .skip(log.entries.len().saturating_sub(4))
                .map(|(i, e)| format!("{i}:{e}"))
                .collect();
            out.push_str(&format!(
                "  b{id} {:?}: log end {}, high watermark {}, flushed {}, epochs {:?}, tail [{}]",
                b.status,
                log.log_end_offset(),
                log.high_watermark,
                log.flushed,
                log.epochs.epochs,
                tail.join(" ")
            ));
            if let Some(p) = &b.process {
                let r = &p.replica;
                out.push_str(&format!(
                    "\n      broker epoch {}, leader {:?} at epoch {}, partition epoch {}, ISR {:?}, live {:?}",
                    p.broker_epoch, r.leader, r.leader_epoch, r.partition_epoch, r.isr, p.live_brokers
                ));
                let sender = &p.alter_partition;
                if sender.pending.is_some() || sender.in_flight.is_some() {
                    out.push_str(&format!(
                        ", AlterPartition pending {:?} in flight {:?}",
                        sender.pending.as_ref().map(|p| &p.new_isr),
                        sender.in_flight.as_ref().map(|(id, p)| (id, &p.new_isr))
                    ));
                }
                if let Some(f) = &p.fetcher {
                    out.push_str(&format!(
                        ", fetching from b{} at epoch {}",
                        f.leader, f.leader_epoch
                    ));
                }
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "  committed up to {}, {} records acknowledged",
            self.checker.committed.len(),
            self.checker.acked.len()
        ));
        out
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

#[test]
fn acknowledged_records_survive_crashes_pauses_and_partitions() {
    let seeds: Vec<u64> = match env_u64("STRATA_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("STRATA_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    let steps = env_u64("STRATA_SIM_STEPS").unwrap_or(DEFAULT_STEPS);
    let started = Instant::now();
    let mut total = Summary::default();
    for seed in &seeds {
        match Sim::new(*seed, false).run(steps) {
            Ok(s) => {
                total.steps += s.steps;
                total.now_ms += s.now_ms;
                total.acked += s.acked;
                total.committed += s.committed;
                total.faults += s.faults;
                total.elections += s.elections;
            }
            Err(failure) => {
                // Runs are deterministic: the same seed with the trace on fails the same way.
                let traced = Sim::new(*seed, true).run(steps).err().unwrap_or(failure);
                panic!("{}", traced.report(*seed));
            }
        }
    }
    eprintln!(
        "{} seeds, {} steps ({} simulated seconds) in {:.1?}: {} faults, {} leader changes, {} records committed, {} acknowledged",
        seeds.len(),
        total.steps,
        total.now_ms / 1_000,
        started.elapsed(),
        total.faults,
        total.elections,
        total.committed,
        total.acked
    );
}

#[test]
fn a_seed_replays_event_for_event() {
    let run = || {
        let mut sim = Sim::new(7, true);
        let summary = sim.run(1_000).unwrap_or_else(|f| panic!("{}", f.report(7)));
        (summary, sim.trace.expect("tracing"))
    };
    assert_eq!(run(), run());
}
