//! The request processor: one task that owns the tree, the sessions and the watches.
//!
//! Connections hand it decoded requests; it answers reads at once (unless the same
//! session still waits for an earlier write, so each session sees its replies in order)
//! and turns writes into transactions that it proposes to replication
//! ([`crate::replication`]). A write is applied and answered when replication hands it
//! back committed — durable on a quorum, which for a standalone server is its own disk —
//! so no client ever sees a change that a crash could take back.
//!
//! Every reply carries the xid of the request it answers, whatever the operation: the
//! Java client numbers `setWatches` like any request and drops the connection ("Xid out
//! of order") when a reply comes back under another xid; kazoo and pings use their fixed
//! xids and get them back the same way.
//!
//! A write is answered only by the server that received it, and only on the connection
//! it came in on: the committed transaction must be that very proposal, told apart from
//! an older one with the same xid (kazoo restarts its xids on every connection) by the
//! time stamp it was proposed with. When a write can no longer be answered correctly
//! (the replication queue is full, there is no leader to take it, or a later write of the
//! same connection committed before it), the connection is closed: the client sees
//! CONNECTIONLOSS and retries, as with ZooKeeper when a server loses its leader.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::acl;
use crate::config::Config;
use crate::proto::{ErrorCode, Id, Request, perms};
use crate::replication::{FromReplication, ProposalId, ReplicaStatus, ToReplication};
use crate::server::fourlw;
use crate::server::ops;
use crate::server::reply::{Outgoing, ReplySender};
use crate::server::response;
use crate::storage;
use crate::tree::{CONFIG_NODE, DataTree};
use crate::txn::{Txn, TxnBody};
use crate::watch::WatchManager;

/// The client's `ConnectRequest`.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    /// The subject of the TLS client certificate, if any: the session's `x509` id.
    pub certificate: Option<String>,
}

pub enum Event {
    Connect {
        conn: u64,
        remote: SocketAddr,
        tx: ReplySender,
        req: ConnectRequest,
    },
    Request {
        conn: u64,
        xid: i32,
        req: Request,
        /// The request's share of the connections' byte budget, given back when the
        /// processor drops the event.
        _held: Option<tokio::sync::OwnedSemaphorePermit>,
    },
    /// A request that could not be decoded or was too large: answer with `err`.
    BadRequest {
        conn: u64,
        xid: i32,
        err: ErrorCode,
    },
    Disconnected {
        conn: u64,
    },
    /// A four-letter word.
    Command {
        word: String,
        reply: oneshot::Sender<String>,
    },
    /// The Prometheus exposition of `mntr`, for the metrics endpoint.
    Metrics {
        reply: oneshot::Sender<String>,
    },
    /// A connection was closed by a limit before it had a session, counted for `mntr`.
    Refused(Refusal),
}

/// Why a connection was closed before it had a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already had `maxClientCnxns` connections.
    TooManyFromAddress,
    /// No ConnectRequest within the sessionless timeout.
    Sessionless,
}

/// What a session waits for, in order.
enum Pending {
    /// The session's CreateSession is not committed yet: a client that sends requests
    /// right behind its ConnectRequest (the Java client's Netty socket does) gets no
    /// answer before the ConnectResponse.
    Session,
    Write {
        xid: i32,
        /// The proposal's time stamp: with the xid, it names the transaction to wait for.
        time_ms: i64,
        started: Instant,
    },
    Read {
        xid: i32,
        req: Request,
        started: Instant,
    },
}

struct Connection {
    tx: ReplySender,
    remote: SocketAddr,
    session: Option<i64>,
    received: u64,
    sent: u64,
}

/// A session as this server tracks it; the replicated part is in `DataTree::sessions`.
struct LiveSession {
    timeout_ms: i32,
    deadline: Instant,
    conn: Option<u64>,
    /// `addAuth` ids plus the client's `ip` id.
    auth: Vec<Id>,
    /// A closeSession is on its way through the log.
    closing: bool,
    pending: VecDeque<Pending>,
}

#[derive(Default)]
pub struct Stats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    pub latency_total_ms: u64,
    pub latency_count: u64,
    pub snapshots: u64,
    /// ZooKeeper's `connection_rejected`: over `maxClientCnxns`.
    pub connections_rejected: u64,
    /// ZooKeeper's `sessionless_connections_expired`.
    pub sessionless_expired: u64,
    /// Connections dropped because their replies passed the reply queue's bound.
    pub slow_dropped: u64,
}

pub struct Processor {
    cfg: Arc<Config>,
    pub(crate) tree: DataTree,
    pub(crate) watches: WatchManager,
    sessions: HashMap<i64, LiveSession>,
    conns: HashMap<u64, Connection>,
    /// Connections waiting for their createSession to commit.
    connecting: HashMap<i64, u64>,
    next_session_id: i64,
    /// Seed for session passwords; they only need to be unguessable by clients.
    secret: u64,
    /// Where writes go to be ordered and made durable.
    replication: mpsc::Sender<ToReplication>,
    /// This server's part in replication, as last reported.
    role: ReplicaStatus,
    since_snapshot: u64,
    snapshot_every: u64,
    /// Containers and TTL nodes with a deletion on its way.
    special_inflight: HashSet<String>,
    pub(crate) stats: Stats,
    started: Instant,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What this server can say about a `reconfig` before the leader decides it, in
/// ZooKeeper's order: disabled, standalone, then WRITE on `/zookeeper/config`
/// (which only a super user has unless one granted it).
fn refuse_reconfig(cfg: &Config, tree: &DataTree, req: &Request, auth: &[Id]) -> Option<ErrorCode> {
    if !matches!(req, Request::Reconfig { .. }) {
        return None;
    }
    if !cfg.reconfig_enabled {
        return Some(ErrorCode::ReconfigDisabled);
    }
    if cfg.is_standalone() {
        return Some(ErrorCode::Unimplemented);
    }
    let node = tree.get(CONFIG_NODE)?;
    acl::check(&node.acl, perms::WRITE, auth).err()
}

impl Processor {
    pub fn new(
        cfg: Arc<Config>,
        mut tree: DataTree,
        replication: mpsc::Sender<ToReplication>,
    ) -> Processor {
        if !tree.has_dynamic_config() {
            tree.set_config(cfg.membership_text().as_deref());
        }
        let now = Instant::now();
        let sessions = tree
            .sessions
            .iter()
            .map(|(id, s)| {
                (
                    *id,
                    LiveSession {
                        timeout_ms: s.timeout_ms,
                        deadline: now + Duration::from_millis(s.timeout_ms as u64),
                        conn: None,
                        auth: Vec::new(),
                        closing: false,
                        pending: VecDeque::new(),
                    },
                )
            })
            .collect();
        // ZooKeeper's session id layout: server id in the top byte, then time.
        let base = ((now_ms() as u64) << 24 >> 8) as i64;
        let next_session_id = base | ((cfg.my_id as i64 & 0xff) << 56);
        // Snapshots at a server-specific point between snapCount/2 and snapCount, so the
        // servers of an ensemble do not all snapshot at once.
        let half = cfg.snap_count / 2;
        let snapshot_every = half + (cfg.my_id * 7919) % half.max(1);
        let secret = now_ms() as u64 ^ (std::process::id() as u64) << 32;
        Processor {
            tree,
            watches: WatchManager::default(),
            sessions,
            conns: HashMap::new(),
            connecting: HashMap::new(),
            next_session_id,
            secret,
            replication,
            role: ReplicaStatus::starting(),
            since_snapshot: 0,
            snapshot_every,
            special_inflight: HashSet::new(),
            stats: Stats::default(),
            started: now,
            cfg,
        }
    }

    /// Apply what replication reports until this server serves: a standalone server
    /// opens its client port only then, with every logged transaction applied, as
    /// ZooKeeper does after loading its database. `false` if replication stopped.
    pub async fn until_serving(
        &mut self,
        replication: &mut mpsc::Receiver<FromReplication>,
    ) -> bool {
        while !self.role.serving {
            match replication.recv().await {
                Some(ev) => self.replicated(ev),
                None => return false,
            }
        }
        true
    }

    /// Run until the event channel or replication closes.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut replication: mpsc::Receiver<FromReplication>,
    ) -> anyhow::Result<()> {
        let tick = Duration::from_millis(self.cfg.tick_time_ms.max(10) / 2);
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let purge_every = Duration::from_secs(self.cfg.purge_interval_hours * 3600);
        let mut next_purge = Instant::now() + purge_every;
        loop {
            tokio::select! {
                // What replication decided comes first: a client's request is answered
                // against every commit and role change reported before it arrived.
                biased;
                ev = replication.recv() => {
                    let Some(ev) = ev else { anyhow::bail!("replication stopped") };
                    self.replicated(ev);
                }
                ev = events.recv() => {
                    let Some(ev) = ev else { return Ok(()) };
                    self.handle(ev);
                    // Drain what is already queued so it joins the same batch.
                    for _ in 0..1024 {
                        match events.try_recv() {
                            Ok(ev) => self.handle(ev),
                            Err(_) => break,
                        }
                    }
                }
                _ = ticker.tick() => {
                    self.expire_sessions();
                    self.give_up_lost_writes();
                    self.expire_special_nodes();
                    if purge_every > Duration::ZERO && Instant::now() >= next_purge {
                        next_purge = Instant::now() + purge_every;
                        let (s, l, n) = (self.cfg.data_dir.clone(), self.cfg.data_log_dir.clone(), self.cfg.snap_retain_count);
                        tokio::task::spawn_blocking(move || {
                            if let Err(e) = storage::purge(&s, &l, n) {
                                tracing::warn!("autopurge failed: {e}");
                            }
                        });
                    }
                }
            }
        }
    }

    /// Hand a transaction to replication, which gives it its zxid. Returns `false` when
    /// it could not be taken (the queue is bounded); the caller must then not wait for
    /// its commit.
    fn propose(&mut self, txn: Txn) -> bool {
        self.replication
            .try_send(ToReplication::Propose(bytes::Bytes::from(txn.to_bytes())))
            .is_ok()
    }

    /// A transaction on behalf of the server itself (session expiry, container cleanup),
    /// which nobody waits for. Returns `false` if it could not be taken; the caller
    /// leaves it to a later tick.
    fn propose_housekeeping(&mut self, session_id: i64, body: TxnBody) -> bool {
        let txn = Txn {
            zxid: 0,
            time_ms: now_ms(),
            session_id,
            cxid: 0,
            auth: Vec::new(),
            body,
        };
        self.propose(txn)
    }

    /// A write of this session's current connection can no longer be answered: close the
    /// connection so the client sees CONNECTIONLOSS and retries.
    fn write_lost(&mut self, session: i64, why: &str) {
        if let Some(conn) = self.session_conn(session) {
            tracing::info!("session {session:#x}: {why}; closing its connection");
            self.drop_conn(conn);
        }
    }

    fn send(&mut self, conn: u64, frame: BytesMut) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.sent += 1;
        self.stats.packets_sent += 1;
        if c.tx.try_send(Outgoing::Frame(frame)).is_err() {
            tracing::warn!(conn, "client too slow or gone; closing its connection");
            c.tx.abort();
            self.stats.slow_dropped += 1;
            self.drop_conn(conn);
        }
    }

    fn drop_conn(&mut self, conn: u64) {
        if let Some(c) = self.conns.remove(&conn) {
            let _ = c.tx.try_send(Outgoing::Close);
            if let Some(s) = c.session.and_then(|s| self.sessions.get_mut(&s))
                && s.conn == Some(conn)
            {
                s.conn = None;
                s.pending.clear();
            }
        }
    }

    fn session_conn(&self, session: i64) -> Option<u64> {
        self.sessions.get(&session).and_then(|s| s.conn)
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Connect {
                conn,
                remote,
                tx,
                req,
            } => self.connect(conn, remote, tx, req),
            Event::Request { conn, xid, req, .. } => self.request(conn, xid, req),
            Event::BadRequest { conn, xid, err } => {
                let zxid = self.tree.last_zxid;
                self.send(conn, response::frame(xid, zxid, err, |_| {}));
            }
            Event::Disconnected { conn } => self.drop_conn(conn),
            Event::Command { word, reply } => {
                let _ = reply.send(fourlw::run(self, &word));
            }
            Event::Metrics { reply } => {
                let _ = reply.send(fourlw::prometheus(self));
            }
            Event::Refused(Refusal::TooManyFromAddress) => self.stats.connections_rejected += 1,
            Event::Refused(Refusal::Sessionless) => self.stats.sessionless_expired += 1,
        }
    }

    fn replicated(&mut self, ev: FromReplication) {
        match ev {
            FromReplication::Committed(txns) => {
                for txn in txns {
                    if txn.zxid > self.tree.last_zxid {
                        self.commit(txn);
                    }
                }
            }
            FromReplication::Reset(tree) => {
                self.tree = *tree;
                if !self.tree.has_dynamic_config() {
                    self.tree.set_config(self.cfg.membership_text().as_deref());
                }
                self.special_inflight.clear();
                self.since_snapshot = 0;
            }
            FromReplication::Status(status) => self.role_changed(status),
            FromReplication::Touch(sessions) => {
                let now = Instant::now();
                for id in sessions {
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.deadline = now + Duration::from_millis(s.timeout_ms as u64);
                    }
                }
            }
            FromReplication::Dropped(id) => {
                if self.pending_position(id).is_some() {
                    self.write_lost(id.session, "a write found no leader to take it");
                }
            }
        }
    }

    /// Where the write `id` waits among its session's pending requests, if it belongs to
    /// the session's current connection.
    fn pending_position(&self, id: ProposalId) -> Option<usize> {
        self.sessions
            .get(&id.session)?
            .pending
            .iter()
            .position(|p| {
                matches!(p, Pending::Write { xid, time_ms, .. }
                if *xid == id.cxid && *time_ms == id.time_ms)
            })
    }

    fn role_changed(&mut self, status: ReplicaStatus) {
        let was_serving = self.role.serving;
        let was_leading = self.role.leading;
        self.role = status;
        if was_serving && !self.role.serving {
            // Not part of a working quorum: clients must go to a server that is.
            tracing::info!("stopped serving; closing client connections");
            let conns: Vec<u64> = self.conns.keys().copied().collect();
            for c in conns {
                self.drop_conn(c);
            }
            for (_, conn) in self.connecting.drain() {
                self.conns.remove(&conn);
            }
        }
        if self.role.leading && !was_leading {
            // A new leader gives every session a full timeout before expiring it.
            let now = Instant::now();
            for s in self.sessions.values_mut() {
                s.deadline = now + Duration::from_millis(s.timeout_ms as u64);
                s.closing = false;
            }
        }
    }

    fn connect(&mut self, conn: u64, remote: SocketAddr, tx: ReplySender, req: ConnectRequest) {
        self.conns.insert(
            conn,
            Connection {
                tx,
                remote,
                session: None,
                received: 1,
                sent: 0,
            },
        );
        self.stats.packets_received += 1;
        if !self.role.serving {
            self.drop_conn(conn);
            return;
        }
        if req.last_zxid_seen > self.tree.last_zxid {
            // The client has seen a newer state than this server has; it must try
            // another server (ZooKeeper refuses the same way).
            tracing::info!(
                conn,
                "refusing client that has seen zxid {:#x}",
                req.last_zxid_seen
            );
            self.drop_conn(conn);
            return;
        }
        let timeout_ms = self.cfg.negotiate_timeout_ms(req.timeout_ms as i64);
        // The ids the connection itself proves: its address, and its certificate.
        let mut connection_ids = vec![Id {
            scheme: "ip".into(),
            id: remote.ip().to_string(),
        }];
        connection_ids.extend(req.certificate.iter().map(|dn| Id {
            scheme: "x509".into(),
            id: dn.clone(),
        }));
        if req.session_id == 0 {
            let id = self.next_session_id;
            self.next_session_id += 1;
            let password = self.password_for(id);
            self.sessions.insert(
                id,
                LiveSession {
                    timeout_ms,
                    deadline: Instant::now() + Duration::from_millis(timeout_ms as u64),
                    conn: Some(conn),
                    auth: connection_ids,
                    closing: false,
                    pending: VecDeque::from([Pending::Session]),
                },
            );
            self.conns.get_mut(&conn).expect("inserted").session = Some(id);
            self.connecting.insert(id, conn);
            let txn = Txn {
                zxid: 0,
                time_ms: now_ms(),
                session_id: id,
                cxid: 0,
                auth: Vec::new(),
                body: TxnBody::CreateSession {
                    timeout_ms,
                    password,
                },
            };
            if !self.propose(txn) {
                self.connecting.remove(&id);
                self.sessions.remove(&id);
                self.drop_conn(conn);
            }
            return;
        }
        let id = req.session_id;
        if let Some(info) = self.tree.sessions.get(&id) {
            // A session created on another server moves here.
            self.sessions.entry(id).or_insert_with(|| LiveSession {
                timeout_ms: info.timeout_ms,
                deadline: Instant::now() + Duration::from_millis(info.timeout_ms as u64),
                conn: None,
                auth: Vec::new(),
                closing: false,
                pending: VecDeque::new(),
            });
        }
        let valid = self
            .tree
            .sessions
            .get(&id)
            .is_some_and(|s| s.password == req.password)
            && self.sessions.get(&id).is_some_and(|s| !s.closing);
        if !valid {
            self.send(conn, response::connect(0, 0, &[0; 16]));
            if let Some(c) = self.conns.get(&conn) {
                let _ = c.tx.try_send(Outgoing::Close);
            }
            self.conns.remove(&conn);
            return;
        }
        let old_conn = self.session_conn(id);
        if let Some(old) = old_conn {
            self.drop_conn(old);
        }
        let s = self.sessions.get_mut(&id).expect("checked");
        s.conn = Some(conn);
        s.timeout_ms = timeout_ms;
        s.deadline = Instant::now() + Duration::from_millis(timeout_ms as u64);
        s.pending.clear();
        s.auth.retain(|a| a.scheme != "ip" && a.scheme != "x509");
        s.auth.extend(connection_ids);
        self.conns.get_mut(&conn).expect("inserted").session = Some(id);
        let password = self.tree.sessions[&id].password.clone();
        self.send(conn, response::connect(timeout_ms, id, &password));
    }

    fn password_for(&self, session: i64) -> Vec<u8> {
        let mut seed = Vec::new();
        seed.extend_from_slice(&session.to_be_bytes());
        seed.extend_from_slice(&self.secret.to_be_bytes());
        acl::sha1(&seed)[..16].to_vec()
    }

    fn request(&mut self, conn: u64, xid: i32, req: Request) {
        self.stats.packets_received += 1;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.received += 1;
        let Some(session) = c.session else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        s.deadline = Instant::now() + Duration::from_millis(s.timeout_ms as u64);
        let started = Instant::now();
        if s.closing {
            let frame =
                response::frame(xid, self.tree.last_zxid, ErrorCode::SessionExpired, |_| {});
            self.send(conn, frame);
            return;
        }
        if let Request::Auth { scheme, auth } = &req {
            let id = match scheme.as_str() {
                "digest" => std::str::from_utf8(auth).ok().and_then(acl::digest_id),
                _ => None,
            };
            let zxid = self.tree.last_zxid;
            match id {
                Some(id) => {
                    if self.cfg.super_digest.as_deref() == Some(id.as_str()) {
                        let sup = Id {
                            scheme: "super".into(),
                            id: String::new(),
                        };
                        if !s.auth.contains(&sup) {
                            s.auth.push(sup);
                        }
                    }
                    let id = Id {
                        scheme: "digest".into(),
                        id,
                    };
                    if !s.auth.contains(&id) {
                        s.auth.push(id);
                    }
                    // ZooKeeper echoes the request's xid (kazoo uses -4, others a normal xid).
                    self.send(conn, response::frame(xid, zxid, ErrorCode::Ok, |_| {}));
                }
                None => {
                    self.send(
                        conn,
                        response::frame(xid, zxid, ErrorCode::AuthFailed, |_| {}),
                    );
                    self.drop_conn(conn);
                }
            }
            return;
        }
        // In an ensemble, `sync` travels through the leader like a write: when it comes
        // back committed, everything the leader had before it has been applied here. A
        // standalone server is its own leader and answers it at once.
        let through_leader =
            req.is_write() || (!self.cfg.is_standalone() && matches!(req, Request::Sync { .. }));
        if through_leader {
            let time_ms = now_ms();
            s.pending.push_back(Pending::Write {
                xid,
                time_ms,
                started,
            });
            let txn = Txn {
                zxid: 0,
                time_ms,
                session_id: session,
                cxid: xid,
                auth: s.auth.clone(),
                body: if matches!(req, Request::Close) {
                    s.closing = true;
                    TxnBody::CloseSession
                } else if let Some(refused) = refuse_reconfig(&self.cfg, &self.tree, &req, &s.auth)
                {
                    // Logged and answered in order with the session's other writes.
                    TxnBody::Error {
                        code: refused.code(),
                    }
                } else {
                    TxnBody::Write(req)
                },
            };
            if !self.propose(txn) {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.closing = false;
                }
                self.write_lost(session, "the replication queue is full");
            }
        } else if s.pending.is_empty() {
            self.read(session, conn, xid, &req, started);
        } else {
            s.pending.push_back(Pending::Read { xid, req, started });
        }
    }

    fn record_latency(&mut self, started: Instant) {
        let ms = started.elapsed().as_millis() as u64;
        let st = &mut self.stats;
        st.latency_min_ms = if st.latency_count == 0 {
            ms
        } else {
            st.latency_min_ms.min(ms)
        };
        st.latency_max_ms = st.latency_max_ms.max(ms);
        st.latency_total_ms += ms;
        st.latency_count += 1;
    }

    /// Answer a read (or any request that needs no transaction) from the local tree.
    fn read(&mut self, session: i64, conn: u64, xid: i32, req: &Request, started: Instant) {
        let zxid = self.tree.last_zxid;
        let auth = &self.sessions[&session].auth;
        let mut r = ops::Read::new(&self.tree, &mut self.watches, session, auth);
        let result = ops::read(&mut r, req);
        let (body, events) = (r.w, r.events);
        for (ty, path) in events {
            self.send(conn, response::notification(ty, &path));
        }
        let frame = match result {
            Ok(()) => response::frame(xid, zxid, ErrorCode::Ok, |w| {
                w.buf.extend_from_slice(&body.buf)
            }),
            Err(e) => response::frame(xid, zxid, e, |_| {}),
        };
        self.send(conn, frame);
        if !matches!(req, Request::Ping) {
            self.record_latency(started);
        }
    }

    /// Apply a durable transaction, fire its watches and answer its client.
    fn commit(&mut self, txn: Txn) {
        let applied = self.tree.apply(&txn);
        for (ty, path) in &applied.triggers {
            for s in self.watches.trigger(*ty, path) {
                if let Some(conn) = self.session_conn(s) {
                    self.send(conn, response::notification(*ty, path));
                }
            }
        }
        if let TxnBody::DeleteIfEmpty { path } = &txn.body {
            self.special_inflight.remove(path);
        }
        self.since_snapshot += 1;
        if self.since_snapshot >= self.snapshot_every {
            self.since_snapshot = 0;
            self.snapshot();
        }
        let session = txn.session_id;
        match &txn.body {
            TxnBody::CreateSession {
                timeout_ms,
                password,
            } => {
                let timeout_ms = *timeout_ms;
                self.sessions.entry(session).or_insert_with(|| LiveSession {
                    timeout_ms,
                    deadline: Instant::now() + Duration::from_millis(timeout_ms as u64),
                    conn: None,
                    auth: Vec::new(),
                    closing: false,
                    pending: VecDeque::new(),
                });
                if let Some(conn) = self.connecting.remove(&session) {
                    self.send(conn, response::connect(timeout_ms, session, password));
                    if let Some(s) = self.sessions.get_mut(&session)
                        && matches!(s.pending.front(), Some(Pending::Session))
                    {
                        s.pending.pop_front();
                    }
                    self.answer_queued_reads(session, conn);
                }
                return;
            }
            TxnBody::CloseSession => {
                self.watches.remove_session(session);
                let answer = self.pending_position(ProposalId::of(&txn)) == Some(0);
                if let Some(mut s) = self.sessions.remove(&session) {
                    if let (true, Some(conn), Some(Pending::Write { xid, started, .. })) =
                        (answer, s.conn, s.pending.pop_front())
                    {
                        self.send(conn, response::frame(xid, txn.zxid, ErrorCode::Ok, |_| {}));
                        self.record_latency(started);
                    }
                    if let Some(conn) = s.conn {
                        self.drop_conn(conn);
                    }
                }
                return;
            }
            TxnBody::DeleteIfEmpty { .. } => return,
            TxnBody::Write(_) | TxnBody::Reconfig { .. } | TxnBody::Error { .. } => {}
        }
        match self.pending_position(ProposalId::of(&txn)) {
            // Not a write of this session's current connection (proposed by another
            // server, or by a connection since closed): nobody here waits for it.
            None => return,
            Some(0) => {}
            Some(_) => {
                // ZooKeeper commits a connection's writes in the order they came; an
                // earlier one that has not committed was lost on its way to the leader.
                self.write_lost(session, "an earlier write was lost before the leader");
                return;
            }
        }
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(conn) = s.conn else { return };
        let Some(Pending::Write { xid, started, .. }) = s.pending.pop_front() else {
            return;
        };
        let frame = match &txn.body {
            TxnBody::Write(req) => response::write_reply(xid, txn.zxid, req, &applied.result),
            _ => response::decided_reply(xid, txn.zxid, &applied.result),
        };
        self.send(conn, frame);
        self.record_latency(started);
        self.answer_queued_reads(session, conn);
    }

    /// Reads that queued behind a write (or the session's creation) can go now.
    fn answer_queued_reads(&mut self, session: i64, conn: u64) {
        loop {
            let Some(s) = self.sessions.get_mut(&session) else {
                return;
            };
            if !matches!(s.pending.front(), Some(Pending::Read { .. })) {
                break;
            }
            let Some(Pending::Read { xid, req, started }) = s.pending.pop_front() else {
                break;
            };
            self.read(session, conn, xid, &req, started);
        }
    }

    /// Takes the tree's state between two transactions (no znode data is copied) and
    /// serializes and writes it on a blocking thread: serializing a large tree on the
    /// request path stopped every client for its whole duration. Recovery replays every
    /// logged transaction past the newest readable snapshot, so a log that rolls a little
    /// later, or a snapshot that is never written (a crash meanwhile), loses nothing.
    fn snapshot(&mut self) {
        let view = self.tree.snapshot_view();
        self.stats.snapshots += 1;
        let dir = self.cfg.data_dir.clone();
        let replication = self.replication.clone();
        tokio::task::spawn_blocking(move || match storage::write_snapshot_view(&dir, view) {
            // The log rolls to a new file; a leader may now serve this snapshot to a
            // learner far behind, and drop the log entries it covers.
            Ok((zxid, file)) => {
                let _ = replication.try_send(ToReplication::Compacted { zxid, file });
            }
            Err(e) => tracing::error!("snapshot failed: {e}"),
        });
    }

    fn expire_sessions(&mut self) {
        if !self.role.leading {
            // Only the leader expires sessions; tell it which are alive here.
            let alive: Vec<i64> = self
                .sessions
                .iter()
                .filter(|(_, s)| s.conn.is_some())
                .map(|(id, _)| *id)
                .collect();
            if !alive.is_empty() {
                let _ = self.replication.try_send(ToReplication::Touch(alive));
            }
            return;
        }
        let now = Instant::now();
        let expired: Vec<i64> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.closing && s.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            tracing::info!("session {id:#x} expired");
            if let Some(s) = self.sessions.get_mut(&id) {
                s.closing = true;
                s.pending.clear();
                if let Some(conn) = s.conn.take() {
                    self.drop_conn(conn);
                }
            }
            if !self.propose_housekeeping(id, TxnBody::CloseSession)
                && let Some(s) = self.sessions.get_mut(&id)
            {
                s.closing = false;
            }
        }
    }

    /// A write forwarded to the leader can be lost with the link that carried it, while
    /// this server goes on following. ZooKeeper's follower would have lost its one
    /// connection to the leader and dropped its clients; here the write is given up
    /// after `initLimit` ticks, the longest a healthy ensemble may take to bring a
    /// follower back, and the connection closed so the client retries.
    fn give_up_lost_writes(&mut self) {
        let limit = Duration::from_millis(self.cfg.init_limit * self.cfg.tick_time_ms);
        let stuck: Vec<i64> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                matches!(s.pending.front(),
                    Some(Pending::Write { started, .. }) if started.elapsed() > limit)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stuck {
            self.write_lost(id, "a write got no commit within initLimit");
        }
    }

    fn expire_special_nodes(&mut self) {
        if !self.role.leading {
            return;
        }
        for path in self.tree.expired_special_nodes(now_ms()) {
            if self.special_inflight.insert(path.clone())
                && !self.propose_housekeeping(0, TxnBody::DeleteIfEmpty { path: path.clone() })
            {
                self.special_inflight.remove(&path);
            }
        }
    }

    // ---- read-only views for four-letter words and metrics ----

    pub(crate) fn mode(&self) -> &'static str {
        self.role.mode
    }

    pub(crate) fn serving(&self) -> bool {
        self.role.serving
    }

    /// `(synced, total)` followers when leading.
    pub(crate) fn synced_followers(&self) -> Option<(usize, usize)> {
        self.role.followers
    }

    /// The latest log fsync's duration in microseconds and how many there were;
    /// replication does the fsyncs.
    pub(crate) fn fsyncs(&self) -> (u64, u64) {
        (self.role.fsync_micros, self.role.fsync_count)
    }

    pub(crate) fn config(&self) -> &Config {
        &self.cfg
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.sessions.values().map(|s| s.pending.len()).sum()
    }

    pub(crate) fn connection_lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .conns
            .values()
            .map(|c| {
                format!(
                    " /{}[1](queued=0,recved={},sent={},sid={:#x})",
                    c.remote,
                    c.received,
                    c.sent,
                    c.session.unwrap_or(0)
                )
            })
            .collect();
        out.sort();
        out
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn watched_paths(&self) -> (usize, usize, usize) {
        let by = self.watches.by_session();
        let paths: BTreeSet<&String> = by.values().flatten().collect();
        (by.len(), paths.len(), self.watches.count())
    }
}

#[cfg(test)]
mod tests {
    //! The processor of an ensemble member, driven event by event with the replication
    //! driver played by the test: what each connection is told, and when it is closed.

    use super::*;
    use crate::jute::Reader;
    use crate::proto::{Acl, CreateOp};
    use crate::replication::Replication;

    struct Member {
        events: mpsc::Sender<Event>,
        replicated: mpsc::Sender<FromReplication>,
        proposals: mpsc::Receiver<ToReplication>,
        zxid: i64,
    }

    struct Conn {
        id: u64,
        out: crate::server::reply::ReplyReceiver,
    }

    /// What a connection received next: a reply header, or the close.
    #[derive(Debug, PartialEq)]
    enum Got {
        Reply { xid: i32, zxid: i64, err: i32 },
        Closed,
    }

    const WAIT: Duration = Duration::from_secs(10);

    impl Member {
        fn start() -> Member {
            let cfg = Config::parse(
                "dataDir=/nonexistent\nserver.1=127.0.0.1:1:2\nserver.2=127.0.0.2:1:2\n",
                "zoo.cfg",
            )
            .unwrap();
            let (replication, proposals, replicated) = Replication::detached(64);
            let (events, rx) = mpsc::channel(64);
            let p = Processor::new(Arc::new(cfg), DataTree::new(), replication.proposals);
            tokio::spawn(p.run(rx, replication.events));
            Member {
                events,
                replicated,
                proposals,
                zxid: 0,
            }
        }

        async fn send(&self, ev: Event) {
            self.events.send(ev).await.unwrap();
        }

        async fn replicate(&self, ev: FromReplication) {
            self.replicated.send(ev).await.unwrap();
        }

        /// Replication reports a follower's role: serving, or (`false`) looking.
        async fn follower(&self, serving: bool) {
            self.replicate(FromReplication::Status(ReplicaStatus {
                mode: if serving { "follower" } else { "looking" },
                serving,
                leading: false,
                followers: None,
                fsync_micros: 0,
                fsync_count: 0,
            }))
            .await;
        }

        fn connect_event(id: u64, tx: ReplySender, session: i64, password: Vec<u8>) -> Event {
            Event::Connect {
                conn: id,
                remote: "127.0.0.1:5000".parse().unwrap(),
                tx,
                req: ConnectRequest {
                    last_zxid_seen: 0,
                    timeout_ms: 10_000,
                    session_id: session,
                    password,
                    certificate: None,
                },
            }
        }

        /// The next transaction this member handed to replication (a follower also
        /// reports its live sessions to the leader on every tick; those are skipped).
        async fn proposed(&mut self) -> Txn {
            loop {
                match tokio::time::timeout(WAIT, self.proposals.recv()).await {
                    Ok(Some(ToReplication::Propose(bytes))) => {
                        return Txn::from_bytes(&bytes).unwrap();
                    }
                    Ok(Some(_)) => continue,
                    _ => panic!("nothing proposed within {WAIT:?}"),
                }
            }
        }

        /// The quorum commits `txn`; returns its zxid.
        async fn commit(&mut self, mut txn: Txn) -> i64 {
            self.zxid += 1;
            txn.zxid = self.zxid;
            self.replicate(FromReplication::Committed(vec![txn])).await;
            self.zxid
        }

        /// Open a connection (a new session when `session` is `None`); returns it with
        /// its session id and password.
        async fn connect(
            &mut self,
            id: u64,
            session: Option<(i64, Vec<u8>)>,
        ) -> (Conn, i64, Vec<u8>) {
            let (tx, out) = crate::server::reply::queue();
            let (session_id, password) = session.clone().unwrap_or((0, vec![0; 16]));
            self.send(Member::connect_event(id, tx, session_id, password))
                .await;
            if session.is_none() {
                let create = self.proposed().await;
                self.commit(create).await;
            }
            let mut conn = Conn { id, out };
            let frame = conn.frame().await.expect("a connect response");
            let mut r = Reader::new(&frame[4..]);
            let (_, _, session_id) = (r.read_i32(), r.read_i32(), r.read_i64().unwrap());
            (conn, session_id, r.read_bytes().unwrap())
        }
    }

    impl Conn {
        async fn frame(&mut self) -> Option<BytesMut> {
            match tokio::time::timeout(WAIT, self.out.recv()).await {
                Ok(Some(Outgoing::Frame(f))) => Some(f),
                Ok(Some(Outgoing::Close)) | Ok(None) => None,
                Err(_) => panic!("connection {} got nothing within {WAIT:?}", self.id),
            }
        }

        async fn next(&mut self) -> Got {
            match self.frame().await {
                None => Got::Closed,
                Some(f) => {
                    let mut r = Reader::new(&f[4..]);
                    Got::Reply {
                        xid: r.read_i32().unwrap(),
                        zxid: r.read_i64().unwrap(),
                        err: r.read_i32().unwrap(),
                    }
                }
            }
        }
    }

    fn set_data(path: &str) -> Request {
        Request::SetData {
            path: path.into(),
            data: None,
            version: -1,
        }
    }

    fn create(path: &str) -> Request {
        Request::Create {
            op: CreateOp::Create,
            path: path.into(),
            data: None,
            acl: Acl::world_anyone(),
            flags: 0,
            ttl: 0,
        }
    }

    async fn request(m: &Member, conn: &Conn, xid: i32, req: Request) {
        m.send(Event::Request {
            conn: conn.id,
            xid,
            req,
            _held: None,
        })
        .await;
    }

    #[tokio::test]
    async fn every_reply_carries_its_requests_xid_set_watches_included() {
        let mut m = Member::start();
        m.follower(true).await;
        let (mut c, _, _) = m.connect(1, None).await;
        let set_watches = Request::SetWatches {
            relative_zxid: 0,
            data: vec!["/".into()],
            exist: vec![],
            child: vec![],
            persistent: vec![],
            persistent_recursive: vec![],
        };
        // The Java client numbers setWatches like any request; kazoo-style clients use
        // the reserved -8; pings use -2. Each gets its own xid back.
        for (xid, req) in [
            (90, set_watches.clone()),
            (-8, set_watches),
            (-2, Request::Ping),
            (91, Request::WhoAmI),
        ] {
            request(&m, &c, xid, req).await;
            assert_eq!(
                c.next().await,
                Got::Reply {
                    xid,
                    zxid: 1,
                    err: 0
                }
            );
        }
    }

    #[tokio::test]
    async fn requests_sent_behind_the_connect_request_wait_for_the_session() {
        // The Java client's Netty socket sends queued requests right behind its
        // ConnectRequest; nothing may be answered before the ConnectResponse.
        let mut m = Member::start();
        m.follower(true).await;
        let (tx, out) = crate::server::reply::queue();
        m.send(Member::connect_event(1, tx, 0, vec![0; 16])).await;
        let mut c = Conn { id: 1, out };
        request(&m, &c, 1, Request::WhoAmI).await;
        request(&m, &c, 2, Request::Ping).await;
        let create_session = m.proposed().await;
        // Nothing is sent while the session is being created.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), c.out.recv())
                .await
                .is_err()
        );
        m.commit(create_session).await;
        let connect = c.frame().await.expect("the connect response");
        let mut r = Reader::new(&connect[4..]);
        assert_eq!(r.read_i32().unwrap(), 0, "protocol version");
        assert_eq!(r.read_i32().unwrap(), 10_000, "timeout");
        for xid in [1, 2] {
            assert_eq!(
                c.next().await,
                Got::Reply {
                    xid,
                    zxid: 1,
                    err: 0
                }
            );
        }
    }

    #[tokio::test]
    async fn add_watch_is_answered_with_an_error_response_body() {
        let mut m = Member::start();
        m.follower(true).await;
        let (mut c, _, _) = m.connect(1, None).await;
        request(
            &m,
            &c,
            7,
            Request::AddWatch {
                path: "/".into(),
                mode: 1,
            },
        )
        .await;
        // The Java client deserializes ErrorResponse{err} from it.
        let frame = c.frame().await.expect("a reply");
        let mut r = Reader::new(&frame[4..]);
        assert_eq!(
            (r.read_i32(), r.read_i64(), r.read_i32()),
            (Ok(7), Ok(1), Ok(0))
        );
        assert_eq!((r.read_i32(), r.remaining()), (Ok(0), 0));
    }

    #[tokio::test]
    async fn a_write_from_a_closed_connection_is_not_the_answer_to_a_new_one() {
        let mut m = Member::start();
        m.follower(true).await;
        let (old, session, password) = m.connect(1, None).await;
        request(&m, &old, 1, create("/a")).await;
        let lost = m.proposed().await;
        m.send(Event::Disconnected { conn: 1 }).await;
        // kazoo starts its xids again on a new connection: the same session sends xid 1
        // again, a different write.
        let (mut c, _, _) = m.connect(2, Some((session, password))).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        request(&m, &c, 1, create("/b")).await;
        let current = m.proposed().await;
        assert_eq!((lost.cxid, current.cxid), (1, 1));
        assert_ne!(lost.time_ms, current.time_ms);
        m.commit(lost).await;
        let zxid = m.commit(current).await;
        assert_eq!(
            c.next().await,
            Got::Reply {
                xid: 1,
                zxid,
                err: 0
            },
            "the reply is the commit of this connection's own write"
        );
    }

    #[tokio::test]
    async fn a_write_lost_on_its_way_to_the_leader_closes_the_connection() {
        let mut m = Member::start();
        m.follower(true).await;
        let (mut c, _, _) = m.connect(1, None).await;
        request(&m, &c, 1, set_data("/")).await;
        let _lost = m.proposed().await;
        request(&m, &c, 2, set_data("/")).await;
        let later = m.proposed().await;
        m.commit(later).await;
        // Answering xid 2 before xid 1 would break ZooKeeper's order; answering neither
        // would hang the client. It is told CONNECTIONLOSS and retries.
        assert_eq!(c.next().await, Got::Closed);
    }

    #[tokio::test]
    async fn a_write_refused_for_want_of_a_leader_closes_the_connection() {
        let mut m = Member::start();
        m.follower(true).await;
        let (mut c, _, _) = m.connect(1, None).await;
        request(&m, &c, 1, set_data("/")).await;
        let refused = m.proposed().await;
        m.replicate(FromReplication::Dropped(ProposalId::of(&refused)))
            .await;
        assert_eq!(c.next().await, Got::Closed);
    }

    #[tokio::test]
    async fn no_connection_is_served_while_there_is_no_quorum() {
        let mut m = Member::start();
        // Looking: a client is turned away rather than answered from a stale tree.
        let (tx, mut out) = crate::server::reply::queue();
        m.send(Member::connect_event(1, tx, 0, vec![0; 16])).await;
        assert!(matches!(
            tokio::time::timeout(WAIT, out.recv()).await,
            Ok(Some(Outgoing::Close))
        ));
        // Serving, then the quorum goes: open connections are closed.
        m.follower(true).await;
        let (mut c, _, _) = m.connect(2, None).await;
        m.follower(false).await;
        assert_eq!(c.next().await, Got::Closed);
    }
}
