//! ZAB messages on the wire between servers, in jute primitives.

use bytes::Bytes;

use super::{Entry, Message, PeerState, Snapshot, SnapshotData, SyncKind, Vote};
use crate::jute::{JuteError, Reader, Writer};

fn write_entries(w: &mut Writer, entries: &[Entry]) {
    w.i32(entries.len() as i32);
    for e in entries {
        w.i64(e.zxid).buffer(&e.data);
    }
}

fn read_entries(r: &mut Reader) -> Result<Vec<Entry>, JuteError> {
    let n = r.read_len()?;
    (0..n)
        .map(|_| {
            Ok(Entry {
                zxid: r.read_i64()?,
                data: Bytes::from(r.read_bytes()?),
            })
        })
        .collect()
}

fn state_code(s: PeerState) -> i32 {
    match s {
        PeerState::Looking => 0,
        PeerState::Following => 1,
        PeerState::Leading => 2,
        PeerState::Observing => 3,
    }
}

fn state_from(c: i32) -> Result<PeerState, JuteError> {
    Ok(match c {
        0 => PeerState::Looking,
        1 => PeerState::Following,
        2 => PeerState::Leading,
        3 => PeerState::Observing,
        _ => return Err(JuteError::Truncated("peer state")),
    })
}

pub fn encode(msg: &Message, w: &mut Writer) {
    match msg {
        Message::Vote(v) => {
            w.i32(1)
                .i64(v.round as i64)
                .i64(v.leader as i64)
                .i64(v.epoch)
                .i64(v.zxid)
                .i32(state_code(v.state));
        }
        Message::FollowerInfo {
            request,
            accepted_epoch,
            accepted_leader,
            last_zxid,
            observer,
        } => {
            w.i32(2)
                .i64(*request as i64)
                .i64(*accepted_epoch)
                .i64(*accepted_leader as i64)
                .i64(*last_zxid)
                .bool(*observer);
        }
        Message::LeaderInfo { request, epoch } => {
            w.i32(3).i64(*request as i64).i64(*epoch);
        }
        Message::AckEpoch {
            request,
            epoch,
            current_epoch,
            last_zxid,
        } => {
            w.i32(4)
                .i64(*request as i64)
                .i64(*epoch)
                .i64(*current_epoch)
                .i64(*last_zxid);
        }
        Message::Sync {
            request,
            epoch,
            kind,
            base,
            entries,
            leader_zxid,
            config,
        } => {
            w.i32(5).i64(*request as i64).i64(*epoch);
            match kind {
                SyncKind::Diff => {
                    w.i32(0);
                }
                SyncKind::Trunc => {
                    w.i32(1);
                }
                SyncKind::Snap(None) => {
                    w.i32(2);
                }
                SyncKind::Snap(Some(s)) => {
                    // A SNAP is rare; its file is read here, on the way out. An unreadable
                    // file goes out as an empty body, which the learner refuses loudly
                    // rather than installing.
                    let body = s.data.load().unwrap_or_else(|e| {
                        tracing::error!("snapshot {:#x} unreadable for a SNAP: {e}", s.zxid);
                        Bytes::new()
                    });
                    w.i32(3).i64(s.zxid).buffer(&body);
                }
            }
            w.i64(*base);
            write_entries(w, entries);
            w.i64(*leader_zxid);
            // Last, so a server of an earlier release reads the rest and ignores it.
            if let Some((version, text)) = config {
                w.i64(*version).buffer(text);
            }
        }
        Message::AckNewLeader { request, epoch } => {
            w.i32(6).i64(*request as i64).i64(*epoch);
        }
        Message::UpToDate { epoch, commit } => {
            w.i32(7).i64(*epoch).i64(*commit);
        }
        Message::Propose { epoch, entry } => {
            w.i32(8).i64(*epoch);
            write_entries(w, std::slice::from_ref(entry));
        }
        Message::Ack { epoch, zxid } => {
            w.i32(9).i64(*epoch).i64(*zxid);
        }
        Message::Commit { epoch, zxid } => {
            w.i32(10).i64(*epoch).i64(*zxid);
        }
        Message::Ping { epoch, commit } => {
            w.i32(11).i64(*epoch).i64(*commit);
        }
        Message::PingAck { epoch, last_zxid } => {
            w.i32(12).i64(*epoch).i64(*last_zxid);
        }
        Message::Forward { data } => {
            w.i32(13).buffer(data);
        }
        Message::Config { version, text } => {
            w.i32(14).i64(*version).buffer(text);
        }
    }
}

pub fn decode(r: &mut Reader) -> Result<Message, JuteError> {
    Ok(match r.read_i32()? {
        1 => Message::Vote(Vote {
            round: r.read_i64()? as u64,
            leader: r.read_i64()? as u64,
            epoch: r.read_i64()?,
            zxid: r.read_i64()?,
            state: state_from(r.read_i32()?)?,
        }),
        2 => Message::FollowerInfo {
            request: r.read_i64()? as u64,
            accepted_epoch: r.read_i64()?,
            accepted_leader: r.read_i64()? as u64,
            last_zxid: r.read_i64()?,
            observer: r.read_bool()?,
        },
        3 => Message::LeaderInfo {
            request: r.read_i64()? as u64,
            epoch: r.read_i64()?,
        },
        4 => Message::AckEpoch {
            request: r.read_i64()? as u64,
            epoch: r.read_i64()?,
            current_epoch: r.read_i64()?,
            last_zxid: r.read_i64()?,
        },
        5 => {
            let request = r.read_i64()? as u64;
            let epoch = r.read_i64()?;
            let kind = match r.read_i32()? {
                0 => SyncKind::Diff,
                1 => SyncKind::Trunc,
                2 => SyncKind::Snap(None),
                3 => SyncKind::Snap(Some(Snapshot {
                    zxid: r.read_i64()?,
                    data: SnapshotData::Bytes(Bytes::from(r.read_bytes()?)),
                })),
                _ => return Err(JuteError::Truncated("sync kind")),
            };
            let base = r.read_i64()?;
            let entries = read_entries(r)?;
            let leader_zxid = r.read_i64()?;
            let config = if r.remaining() > 0 {
                Some((r.read_i64()?, Bytes::from(r.read_bytes()?)))
            } else {
                None
            };
            Message::Sync {
                request,
                epoch,
                kind,
                base,
                entries,
                leader_zxid,
                config,
            }
        }
        6 => Message::AckNewLeader {
            request: r.read_i64()? as u64,
            epoch: r.read_i64()?,
        },
        7 => Message::UpToDate {
            epoch: r.read_i64()?,
            commit: r.read_i64()?,
        },
        8 => {
            let epoch = r.read_i64()?;
            let entry = read_entries(r)?
                .pop()
                .ok_or(JuteError::Truncated("proposal"))?;
            Message::Propose { epoch, entry }
        }
        9 => Message::Ack {
            epoch: r.read_i64()?,
            zxid: r.read_i64()?,
        },
        10 => Message::Commit {
            epoch: r.read_i64()?,
            zxid: r.read_i64()?,
        },
        11 => Message::Ping {
            epoch: r.read_i64()?,
            commit: r.read_i64()?,
        },
        12 => Message::PingAck {
            epoch: r.read_i64()?,
            last_zxid: r.read_i64()?,
        },
        13 => Message::Forward {
            data: Bytes::from(r.read_bytes()?),
        },
        14 => Message::Config {
            version: r.read_i64()?,
            text: Bytes::from(r.read_bytes()?),
        },
        _ => return Err(JuteError::Truncated("message type")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let e = Entry {
            zxid: 0x1_0000_0002,
            data: Bytes::from_static(b"txn"),
        };
        let msgs = vec![
            Message::Vote(Vote {
                round: 3,
                leader: 2,
                epoch: 1,
                zxid: 9,
                state: PeerState::Observing,
            }),
            Message::FollowerInfo {
                request: 1,
                accepted_epoch: 2,
                accepted_leader: 3,
                last_zxid: 4,
                observer: true,
            },
            Message::LeaderInfo {
                request: 1,
                epoch: 5,
            },
            Message::AckEpoch {
                request: 1,
                epoch: 5,
                current_epoch: 4,
                last_zxid: 77,
            },
            Message::Sync {
                request: 1,
                epoch: 5,
                kind: SyncKind::Snap(Some(Snapshot {
                    zxid: 3,
                    data: SnapshotData::Bytes(Bytes::from_static(b"tree")),
                })),
                base: 3,
                entries: vec![e.clone()],
                leader_zxid: e.zxid,
                config: Some((0x5_0000_0001, Bytes::from_static(b"server.1=a:1:2"))),
            },
            Message::Sync {
                request: 2,
                epoch: 5,
                kind: SyncKind::Trunc,
                base: 1,
                entries: vec![],
                leader_zxid: 1,
                config: None,
            },
            Message::AckNewLeader {
                request: 1,
                epoch: 5,
            },
            Message::UpToDate {
                epoch: 5,
                commit: 8,
            },
            Message::Propose {
                epoch: 5,
                entry: e.clone(),
            },
            Message::Ack { epoch: 5, zxid: 8 },
            Message::Commit { epoch: 5, zxid: 8 },
            Message::Ping {
                epoch: 5,
                commit: 8,
            },
            Message::PingAck {
                epoch: 5,
                last_zxid: 9,
            },
            Message::Forward {
                data: Bytes::from_static(b"w"),
            },
            Message::Config {
                version: 0x2_0000_0003,
                text: Bytes::from_static(b"server.1=a:1:2:participant\nversion=200000003"),
            },
        ];
        for m in msgs {
            let mut w = Writer::new();
            encode(&m, &mut w);
            assert_eq!(decode(&mut Reader::new(&w.buf)).unwrap(), m);
        }
    }
}
