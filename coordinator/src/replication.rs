//! The contract between the request processor and replication: proposals in, commits
//! and status out.
//!
//! The processor ([`crate::server::processor`]) owns the tree, the sessions and the
//! watches; replication ([`crate::ensemble`], the ZAB core with its log and peer links)
//! owns the order and durability of writes. There is one write path: a standalone server
//! is an ensemble of one voter, which elects itself, logs and commits exactly as a leader
//! of many does, only without anyone to wait for.
//!
//! What flows between the two:
//! * [`ToReplication`]: a write to order ([`ToReplication::Propose`]), a snapshot taken
//!   (the log before it may go), sessions alive here (for the leader's expiry clock);
//! * [`FromReplication`], in the order replication decided it: committed transactions,
//!   the whole state replaced by a leader's snapshot, the role (whether this server may
//!   answer clients, whether it leads), sessions a follower reports alive, and proposals
//!   that went nowhere.
//!
//! Commits and status travel on one channel, so a server that starts serving has
//! applied every transaction committed before it did.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::tree::DataTree;
use crate::txn::Txn;

/// Requests from the processor to replication.
pub enum ToReplication {
    /// An encoded [`Txn`]; the leader gives it its zxid.
    Propose(Bytes),
    /// The processor wrote a snapshot at `zxid` to `file`; the log before it may go.
    Compacted { zxid: i64, file: std::path::PathBuf },
    /// Sessions alive on this server, for the leader's expiry clock.
    Touch(Vec<i64>),
}

/// What replication tells the processor.
pub enum FromReplication {
    /// Transactions the quorum committed, in zxid order.
    Committed(Vec<Txn>),
    /// A leader replaced this server's state with its snapshot (SNAP).
    Reset(Box<DataTree>),
    /// The role changed or is re-reported.
    Status(ReplicaStatus),
    /// On the leader: sessions a follower reports alive.
    Touch(Vec<i64>),
    /// A write proposed here went nowhere (no established leader to take it).
    Dropped(ProposalId),
}

/// This server's part in replication, for the processor and for `srvr`/`mntr`.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    /// `standalone`, `leader`, `follower`, `observer` or `looking`, as ZooKeeper says.
    pub mode: &'static str,
    /// Whether clients may be answered: part of an established quorum.
    pub serving: bool,
    /// Leading an established epoch: this server expires sessions.
    pub leading: bool,
    /// `(synced, total)` followers, when leading.
    pub followers: Option<(usize, usize)>,
    /// Duration of the latest log fsync and how many there were, for `mntr`.
    pub fsync_micros: u64,
    pub fsync_count: u64,
}

impl ReplicaStatus {
    /// Before replication has said anything: not serving.
    pub fn starting() -> ReplicaStatus {
        ReplicaStatus {
            mode: "looking",
            serving: false,
            leading: false,
            followers: None,
            fsync_micros: 0,
            fsync_count: 0,
        }
    }
}

/// Which proposal a committed transaction is: the session, the request's xid, and the
/// time stamp the proposing server gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProposalId {
    pub session: i64,
    pub cxid: i32,
    pub time_ms: i64,
}

impl ProposalId {
    pub fn of(txn: &Txn) -> ProposalId {
        ProposalId {
            session: txn.session_id,
            cxid: txn.cxid,
            time_ms: txn.time_ms,
        }
    }
}

/// The processor's end of replication.
pub struct Replication {
    pub proposals: mpsc::Sender<ToReplication>,
    pub events: mpsc::Receiver<FromReplication>,
}

#[cfg(test)]
impl Replication {
    /// Both ends of a replication contract with nothing behind it: the test plays
    /// replication through the returned ends.
    pub fn detached(
        capacity: usize,
    ) -> (
        Replication,
        mpsc::Receiver<ToReplication>,
        mpsc::Sender<FromReplication>,
    ) {
        let (ptx, prx) = mpsc::channel(capacity);
        let (etx, erx) = mpsc::channel(capacity);
        (
            Replication {
                proposals: ptx,
                events: erx,
            },
            prx,
            etx,
        )
    }
}
