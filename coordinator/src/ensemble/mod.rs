//! Replication: the ZAB core driven by tokio, with its log and its peers. It implements
//! the processor's side of [`crate::replication`] for every server, standalone included
//! (an ensemble of one voter).
//!
//! Two tasks and a thread per server:
//! * the **driver** owns the [`Zab`] core and the peer links. It feeds the core ticks,
//!   peer messages and client writes, and carries out the actions: disk work goes, in
//!   order, to the **log thread**, which group-commits appends (one fsync for all that
//!   queued) and reports each barrier it passes; `SendDurable` messages wait for their
//!   barrier, so nothing is acknowledged before it is on disk, while the driver goes on
//!   exchanging messages during the fsync; committed entries go to the processor;
//! * the peer listener, when there are peers.
//!
//! Votes and all other ZAB traffic use the quorum port; the election port of a
//! `server.N` line is accepted for compatibility and not used.

pub mod peer;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::config::{Config, PeerRole, parse_config_text};
use crate::jute::Reader;
use crate::reconfig::ZkReconfig;
use crate::replication::{FromReplication, ProposalId, ReplicaStatus, Replication, ToReplication};
use crate::storage::{self, Opened, TxnLog};
use crate::tree::{CONFIG_NODE, DataTree};
use crate::txn::Txn;
use crate::zab::{
    Action, Durable, Entry, Input, Membership, Message, Role, ServerId, Snapshot, SnapshotData,
    Zab, ZabConfig,
};
use peer::Frame;

/// Core ticks per `tickTime`: elections and failure detection react in fractions of a
/// tick, while `initLimit`/`syncLimit` keep their meaning in whole ticks.
const TICKS_PER_TICK_TIME: u64 = 10;

/// Queued proposals and commit batches between the processor and the driver.
const QUEUE: usize = 16 * 1024;

/// The membership of the configuration file; a standalone configuration (no
/// `server.N` lines) is an ensemble of one voter, itself.
fn static_membership(cfg: &Config) -> Membership {
    if cfg.is_standalone() {
        return Membership {
            voters: BTreeSet::from([cfg.my_id]),
            ..Membership::default()
        };
    }
    let of = |role: PeerRole| {
        cfg.servers
            .values()
            .filter(|s| s.role == role)
            .map(|s| s.id)
            .collect()
    };
    Membership {
        version: 0,
        voters: of(PeerRole::Participant),
        observers: of(PeerRole::Observer),
        text: Bytes::from(cfg.membership_text().unwrap_or_default()),
    }
}

/// Where each server a configuration text names takes peer connections.
fn quorum_addresses(text: &[u8]) -> Vec<(ServerId, (String, u16))> {
    let Ok((members, _)) = std::str::from_utf8(text)
        .map_err(|e| e.to_string())
        .and_then(parse_config_text)
    else {
        return Vec::new();
    };
    members
        .into_values()
        .map(|m| (m.id, (m.host, m.quorum_port)))
        .collect()
}

/// The version a configuration text carries (`version=<hex>`), if it parses.
fn text_version(text: &str) -> Option<i64> {
    parse_config_text(text).ok().map(|(_, v)| v)
}

/// Open the data directories, start replication, and hand back the processor's end of
/// it with the state of the newest snapshot (the transactions logged after it reach the
/// processor as commits once this server is part of an established quorum).
pub async fn start(cfg: Arc<Config>) -> anyhow::Result<(Replication, DataTree)> {
    let (snap_dir, log_dir) = (cfg.data_dir.clone(), cfg.data_log_dir.clone());
    let opened: Opened =
        tokio::task::spawn_blocking(move || TxnLog::open(&snap_dir, &log_dir)).await??;
    let (accepted_epoch, accepted_leader, current_epoch) = storage::read_epochs(&cfg.data_dir)?;
    let tree = match &opened.snapshot {
        Some((_, body)) => DataTree::deserialize(&mut Reader::new(body))
            .map_err(|e| anyhow::anyhow!("snapshot unreadable: {e}"))?,
        None => DataTree::new(),
    };
    tracing::info!(
        my_id = cfg.my_id,
        snapshot_zxid = format!("{:#x}", tree.last_zxid),
        log_entries = opened.entries.len(),
        truncated_bytes = opened.truncated_bytes,
        accepted_epoch,
        current_epoch,
        "opened"
    );
    let durable = Durable {
        accepted_epoch,
        accepted_leader,
        current_epoch,
        // The body was needed once, for the tree; a SNAP for a learner reads the file.
        snapshot: opened.snapshot.map(|(zxid, _)| Snapshot {
            zxid,
            data: SnapshotData::File(storage::snapshot_path(&cfg.data_dir, zxid)),
        }),
        log: opened
            .entries
            .into_iter()
            .map(|(zxid, raw)| Entry {
                zxid,
                data: Bytes::from(raw),
            })
            .collect(),
        // What this server last made of its membership; with the snapshot's and the
        // log's, the core takes the latest.
        config: storage::read_config(&cfg.data_dir)?
            .and_then(|text| Some((text_version(&text)?, Bytes::from(text)))),
    };
    let rules = Arc::new(ZkReconfig {
        enabled: cfg.reconfig_enabled,
        standalone_enabled: cfg.standalone_enabled,
        standalone: cfg.is_standalone(),
    });
    let mut membership = static_membership(&cfg);
    if tree.has_dynamic_config()
        && let Some(node) = tree.get(CONFIG_NODE)
        && let Some(m) = Membership::from_text(
            &*rules,
            node.stat.mzxid,
            node.data.clone().unwrap_or_default(),
        )
    {
        membership = m;
    }
    let zcfg = ZabConfig {
        id: cfg.my_id,
        membership,
        reconfig: rules,
        init_limit: cfg.init_limit * TICKS_PER_TICK_TIME,
        sync_limit: cfg.sync_limit * TICKS_PER_TICK_TIME,
        max_counter: u32::MAX as i64,
        keep_compacted: 500,
    };

    let (inbox_tx, inbox_rx) = mpsc::channel(16 * 1024);
    let resolve = peer::system_resolver();
    let me = cfg.servers.get(&cfg.my_id);
    if let Some(me) = me {
        let listen_on = peer::ListenOn {
            host: me.host.clone(),
            port: me.quorum_port,
            all_ips: cfg.quorum_listen_on_all_ips,
        };
        tokio::spawn({
            let (resolve, inbox) = (resolve.clone(), inbox_tx.clone());
            async move {
                if let Err(e) = peer::listen(listen_on, resolve, inbox).await {
                    tracing::error!("{e}");
                    std::process::exit(1);
                }
            }
        });
    }
    let mut links = Links {
        my_id: cfg.my_id,
        hello: me.map(|me| Frame::Hello {
            host: me.host.clone(),
            port: me.quorum_port,
        }),
        resolve,
        inbox: inbox_tx,
        peers: BTreeMap::new(),
        seen: (-1, None),
    };
    for s in cfg.servers.values() {
        links.connect(s.id, (s.host.clone(), s.quorum_port));
    }

    let (events_tx, events_rx) = mpsc::channel(QUEUE);
    let (proposals_tx, proposals_rx) = mpsc::channel(QUEUE);
    let (zab, actions) = Zab::new(zcfg, durable);
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    let (durable_tx, durable_rx) = mpsc::unbounded_channel();
    let writer = LogWriter {
        log: opened.log,
        data_dir: cfg.data_dir.clone(),
        done: durable_tx,
    };
    std::thread::Builder::new()
        .name("txn-log".into())
        .spawn(move || writer.run(log_rx))?;
    links.follow(&zab);
    let driver = Driver {
        zab,
        standalone: cfg.is_standalone(),
        log: log_tx,
        links,
        events: events_tx,
        durable_sends: VecDeque::new(),
        barrier: 0,
        barrier_needed: false,
        durable: (0, 0, 0),
        loopback: VecDeque::new(),
    };
    let tick = Duration::from_millis((cfg.tick_time_ms / TICKS_PER_TICK_TIME).max(5));
    tokio::spawn(async move {
        if let Err(e) = driver
            .run(actions, inbox_rx, proposals_rx, durable_rx, tick)
            .await
        {
            tracing::error!("replication stopped: {e}");
            std::process::exit(1);
        }
    });
    Ok((
        Replication {
            proposals: proposals_tx,
            events: events_rx,
        },
        tree,
    ))
}

/// Disk work for the log-writer thread, carried out strictly in order.
enum LogOp {
    Append(Vec<Entry>),
    Epochs {
        accepted: i64,
        leader: ServerId,
        current: i64,
    },
    Truncate(i64),
    Reset(Option<Snapshot>),
    /// Keep the active configuration's text for a restart.
    Config(Bytes),
    Roll,
    /// Answer with this number once everything before it is durable.
    Barrier(u64),
}

/// The transaction log's own thread (ZooKeeper's `SyncRequestProcessor`): it takes all
/// queued appends, writes them and fsyncs once, so the driver keeps exchanging messages
/// while the disk works.
struct LogWriter {
    log: TxnLog,
    data_dir: std::path::PathBuf,
    /// (barrier reached, last fsync in microseconds)
    done: mpsc::UnboundedSender<(u64, u64)>,
}

impl LogWriter {
    fn run(mut self, ops: std::sync::mpsc::Receiver<LogOp>) {
        if let Err(e) = self.serve(ops) {
            tracing::error!("transaction log failed: {e}");
            std::process::exit(1);
        }
    }

    fn serve(&mut self, ops: std::sync::mpsc::Receiver<LogOp>) -> std::io::Result<()> {
        let mut appends: Vec<Entry> = Vec::new();
        while let Ok(first) = ops.recv() {
            let mut batch = vec![first];
            batch.extend(ops.try_iter());
            let mut reached = None;
            for op in batch {
                if !matches!(op, LogOp::Append(_) | LogOp::Barrier(_)) {
                    // History first: nothing else may reach the disk before it.
                    self.write(&mut appends)?;
                }
                match op {
                    LogOp::Append(entries) => appends.extend(entries),
                    LogOp::Barrier(n) => reached = Some(n),
                    LogOp::Epochs {
                        accepted,
                        leader,
                        current,
                    } => storage::write_epochs(&self.data_dir, accepted, leader, current)?,
                    LogOp::Truncate(zxid) => {
                        tracing::info!("TRUNC to {zxid:#x}");
                        self.log.truncate_after(zxid)?;
                    }
                    LogOp::Reset(snapshot) => {
                        let body = snapshot.as_ref().map(|s| s.data.load()).transpose()?;
                        let snap = snapshot
                            .as_ref()
                            .zip(body.as_deref())
                            .map(|(s, b)| (s.zxid, b));
                        self.log.reset_to_snapshot(&self.data_dir, snap)?;
                    }
                    LogOp::Config(text) => storage::write_config(&self.data_dir, &text)?,
                    LogOp::Roll => self.log.roll(),
                }
            }
            self.write(&mut appends)?;
            if let Some(n) = reached
                && self.done.send((n, self.log.last_fsync_micros)).is_err()
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Write and fsync the gathered appends (one fsync for all of them).
    fn write(&mut self, appends: &mut Vec<Entry>) -> std::io::Result<()> {
        if appends.is_empty() {
            return Ok(());
        }
        let raw: Vec<(i64, &[u8])> = appends.iter().map(|e| (e.zxid, &e.data[..])).collect();
        self.log.append_raw(&raw)?;
        appends.clear();
        Ok(())
    }
}

/// The outgoing link to each peer: every server a configuration this server knows
/// names, and every server that introduced itself (a joining server, before any
/// configuration names it).
struct Links {
    my_id: ServerId,
    /// Sent first on every stream: this server's own quorum address.
    hello: Option<Frame>,
    resolve: peer::Resolve,
    inbox: mpsc::Sender<(ServerId, Frame)>,
    peers: BTreeMap<ServerId, ((String, u16), mpsc::Sender<Frame>)>,
    /// The (active, proposed) configuration versions the links were last made for.
    seen: (i64, Option<i64>),
}

impl Links {
    /// A link to `id` at `addr`, replacing one to another address (a reconfiguration
    /// may move a server's quorum port).
    fn connect(&mut self, id: ServerId, addr: (String, u16)) {
        if id == self.my_id || self.peers.get(&id).is_some_and(|(a, _)| *a == addr) {
            return;
        }
        tracing::info!(peer = id, "peer link to {}:{}", addr.0, addr.1);
        let link = peer::connect(
            self.my_id,
            id,
            addr.clone(),
            self.hello.clone(),
            self.resolve.clone(),
            self.inbox.clone(),
        );
        self.peers.insert(id, (addr, link));
    }

    /// A server introduced itself: answer it where it says, unless a configuration
    /// already says where.
    fn introduced(&mut self, id: ServerId, addr: (String, u16)) {
        if !self.peers.contains_key(&id) {
            self.connect(id, addr);
        }
    }

    /// Links for every member of the configurations the core knows, when they changed.
    fn follow(&mut self, zab: &Zab) {
        let (active, pending) = zab.membership();
        let now = (active.version, pending.map(|p| p.version));
        if now == self.seen {
            return;
        }
        self.seen = now;
        for text in std::iter::once(&active.text).chain(pending.map(|p| &p.text)) {
            for (id, addr) in quorum_addresses(text) {
                self.connect(id, addr);
            }
        }
    }
}

struct Driver {
    zab: Zab,
    /// Report the leader of an ensemble of one as `standalone`, as ZooKeeper does.
    standalone: bool,
    log: std::sync::mpsc::Sender<LogOp>,
    links: Links,
    events: mpsc::Sender<FromReplication>,
    /// Messages waiting for a log barrier: they leave once it is durable.
    durable_sends: VecDeque<(u64, ServerId, Message)>,
    /// The barrier the current batch's durable sends wait for.
    barrier: u64,
    barrier_needed: bool,
    /// (barriers passed, last fsync microseconds, fsync count) as the writer reports.
    durable: (u64, u64, u64),
    /// Messages this server sends itself (the leader's own acks).
    loopback: VecDeque<Message>,
}

impl Driver {
    async fn run(
        mut self,
        initial: Vec<Action>,
        mut inbox: mpsc::Receiver<(ServerId, Frame)>,
        mut requests: mpsc::Receiver<ToReplication>,
        mut durable: mpsc::UnboundedReceiver<(u64, u64)>,
        tick: Duration,
    ) -> anyhow::Result<()> {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.execute(initial).await?;
        self.end_batch().await?;
        let mut last_status = String::new();
        loop {
            let mut inputs = Vec::new();
            tokio::select! {
                Some((from, frame)) = inbox.recv() => inputs.push(Ok((from, frame))),
                Some(req) = requests.recv() => inputs.push(Err(req)),
                Some((reached, micros)) = durable.recv() => {
                    self.durable = (reached, micros, self.durable.2 + 1);
                    self.release().await?;
                }
                _ = ticker.tick() => {
                    let actions = self.zab.step(Input::Tick);
                    self.execute(actions).await?;
                    let status = self.status();
                    let key = format!("{:?}", (status.mode, status.serving));
                    if key != last_status {
                        last_status = key;
                        tracing::info!(mode = status.mode, serving = status.serving, "zab role");
                    }
                    let _ = self.events.send(FromReplication::Status(status)).await;
                }
            }
            // Batch whatever else is already waiting.
            for _ in 0..512 {
                match inbox.try_recv() {
                    Ok(x) => inputs.push(Ok(x)),
                    Err(_) => break,
                }
            }
            for _ in 0..512 {
                match requests.try_recv() {
                    Ok(x) => inputs.push(Err(x)),
                    Err(_) => break,
                }
            }
            for input in inputs {
                match input {
                    Ok((from, Frame::Zab(msg))) => {
                        let actions = self.zab.step(Input::Message { from, msg });
                        self.execute(actions).await?;
                    }
                    Ok((_, Frame::Touch(sessions))) => {
                        let _ = self.events.send(FromReplication::Touch(sessions)).await;
                    }
                    Ok((from, Frame::Hello { host, port })) => {
                        self.links.introduced(from, (host, port));
                    }
                    Ok((from, Frame::Lost)) => {
                        tracing::info!(peer = from, "connection from peer lost");
                        let actions = self.zab.step(Input::PeerLost(from));
                        self.execute(actions).await?;
                    }
                    Err(ToReplication::Propose(data)) => {
                        let actions = self.zab.step(Input::Propose(data));
                        self.execute(actions).await?;
                    }
                    Err(ToReplication::Compacted { zxid, file }) => {
                        self.log_op(LogOp::Roll)?;
                        let data = SnapshotData::File(file);
                        let actions = self.zab.step(Input::Compacted(Snapshot { zxid, data }));
                        self.execute(actions).await?;
                    }
                    Err(ToReplication::Touch(sessions)) => {
                        let leader = match self.zab.role() {
                            Role::Following { leader, .. } | Role::Observing { leader, .. } => {
                                Some(leader)
                            }
                            _ => None,
                        };
                        if let Some(l) = leader.and_then(|l| self.links.peers.get(&l)) {
                            let _ = l.1.try_send(Frame::Touch(sessions));
                        }
                    }
                }
            }
            self.links.follow(&self.zab);
            self.end_batch().await?;
        }
    }

    fn status(&self) -> ReplicaStatus {
        let zab = &self.zab;
        let role = zab.role();
        ReplicaStatus {
            mode: match role {
                Role::Leading { .. } if self.standalone => "standalone",
                Role::Looking => "looking",
                Role::Following { .. } => "follower",
                Role::Observing { .. } => "observer",
                Role::Leading { .. } => "leader",
            },
            serving: zab.is_serving(),
            leading: matches!(
                role,
                Role::Leading {
                    established: true,
                    ..
                }
            ),
            followers: zab.followers(),
            fsync_micros: self.durable.1,
            fsync_count: self.durable.2,
        }
    }

    fn log_op(&self, op: LogOp) -> anyhow::Result<()> {
        self.log
            .send(op)
            .map_err(|_| anyhow::anyhow!("the transaction log thread stopped"))
    }

    fn send(&mut self, to: ServerId, msg: Message) {
        if to == self.zab.id() {
            self.loopback.push_back(msg);
        } else if let Some((_, p)) = self.links.peers.get(&to) {
            // A full queue means the peer is far behind or gone; ZAB copes with the loss.
            let _ = p.try_send(Frame::Zab(msg));
        }
    }

    /// Close the batch: ask the log thread for a barrier if anything waits for one.
    async fn end_batch(&mut self) -> anyhow::Result<()> {
        if self.barrier_needed {
            self.barrier_needed = false;
            self.log_op(LogOp::Barrier(self.barrier))?;
            self.barrier += 1;
        }
        Ok(())
    }

    /// Send what the latest durable barrier released, and run the core on what this
    /// server sent itself.
    async fn release(&mut self) -> anyhow::Result<()> {
        let reached = self.durable.0;
        while self
            .durable_sends
            .front()
            .is_some_and(|(b, _, _)| *b <= reached)
        {
            let (_, to, msg) = self.durable_sends.pop_front().expect("checked");
            self.send(to, msg);
        }
        while let Some(msg) = self.loopback.pop_front() {
            let from = self.zab.id();
            let actions = self.zab.step(Input::Message { from, msg });
            self.execute(actions).await?;
        }
        self.end_batch().await
    }

    async fn execute(&mut self, actions: Vec<Action>) -> anyhow::Result<()> {
        let mut committed = Vec::new();
        for a in actions {
            match a {
                Action::Send { to, msg } => self.send(to, msg),
                Action::SendDurable { to, msg } => {
                    self.barrier_needed = true;
                    self.durable_sends.push_back((self.barrier, to, msg));
                }
                Action::Append(entries) => self.log_op(LogOp::Append(entries))?,
                Action::PersistEpochs {
                    accepted_epoch,
                    accepted_leader,
                    current_epoch,
                } => self.log_op(LogOp::Epochs {
                    accepted: accepted_epoch,
                    leader: accepted_leader,
                    current: current_epoch,
                })?,
                Action::Truncate(zxid) => self.log_op(LogOp::Truncate(zxid))?,
                Action::PersistConfig(version, text) => {
                    tracing::info!(
                        version = format!("{version:#x}"),
                        "active configuration:\n{}",
                        String::from_utf8_lossy(&text)
                    );
                    self.log_op(LogOp::Config(text))?
                }
                Action::InstallSnapshot(snapshot) => {
                    self.flush_commits(&mut committed).await;
                    let tree = match &snapshot {
                        Some(s) => DataTree::deserialize(&mut Reader::new(&s.data.load()?))
                            .map_err(|e| anyhow::anyhow!("leader's snapshot unreadable: {e}"))?,
                        None => DataTree::new(),
                    };
                    tracing::info!("SNAP at {:#x}", tree.last_zxid);
                    self.log_op(LogOp::Reset(snapshot))?;
                    let _ = self
                        .events
                        .send(FromReplication::Reset(Box::new(tree)))
                        .await;
                }
                Action::Commit(entries) => {
                    for e in entries {
                        match Txn::from_bytes(&e.data) {
                            Ok(mut t) => {
                                t.zxid = e.zxid;
                                committed.push(t);
                            }
                            Err(err) => {
                                anyhow::bail!("committed entry {:#x} unreadable: {err}", e.zxid)
                            }
                        }
                    }
                }
                Action::RoleChanged(_) => {
                    self.flush_commits(&mut committed).await;
                    let status = self.status();
                    let _ = self.events.send(FromReplication::Status(status)).await;
                }
                Action::Refused(data) => {
                    if let Ok(txn) = Txn::from_bytes(&data) {
                        let id = ProposalId::of(&txn);
                        let _ = self.events.send(FromReplication::Dropped(id)).await;
                    }
                }
            }
        }
        self.flush_commits(&mut committed).await;
        Ok(())
    }

    async fn flush_commits(&mut self, committed: &mut Vec<Txn>) {
        if !committed.is_empty() {
            let _ = self
                .events
                .send(FromReplication::Committed(std::mem::take(committed)))
                .await;
        }
    }
}
