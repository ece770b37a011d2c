//! Encoding replies: the `ReplyHeader` and each request's response record.

use bytes::BytesMut;

use crate::jute::Writer;
use crate::proto::{CreateOp, ErrorCode, Request, event, op, xid};
use crate::tree::Outcome;

/// A reply frame: `ReplyHeader{xid, zxid, err}` then `body` (only when err is 0).
pub fn frame(xid: i32, zxid: i64, err: ErrorCode, body: impl FnOnce(&mut Writer)) -> BytesMut {
    let mut w = Writer::new();
    w.i32(xid).i64(zxid).i32(err.code());
    if err == ErrorCode::Ok {
        body(&mut w);
    }
    w.into_frame()
}

/// A watch notification (`WatcherEvent` after a header with xid -1).
pub fn notification(event_type: i32, path: &str) -> BytesMut {
    frame(xid::NOTIFICATION, -1, ErrorCode::Ok, |w| {
        w.i32(event_type)
            .i32(event::STATE_SYNC_CONNECTED)
            .string(path);
    })
}

/// The `ConnectResponse`; a zero session id and timeout tell the client its session
/// has expired.
pub fn connect(timeout_ms: i32, session_id: i64, password: &[u8]) -> BytesMut {
    let mut w = Writer::new();
    w.i32(0)
        .i32(timeout_ms)
        .i64(session_id)
        .buffer(password)
        .bool(false);
    w.into_frame()
}

fn write_outcome(w: &mut Writer, req: &Request, outcome: &Outcome) {
    match (req, outcome) {
        (
            Request::Create {
                op: CreateOp::Create,
                ..
            },
            Outcome::Created { path, .. },
        ) => {
            w.string(path);
        }
        (Request::Create { .. }, Outcome::Created { path, stat }) => {
            w.string(path);
            stat.write(w);
        }
        (Request::Sync { path }, _) => {
            w.string(path);
        }
        (_, Outcome::Stat(stat)) => stat.write(w),
        (Request::Multi(ops), Outcome::Multi(results)) => {
            for (sub, result) in ops.iter().zip(results) {
                match result {
                    Ok(o) => {
                        w.i32(sub_op(sub)).bool(false).i32(0);
                        // ZooKeeper's MultiResponse carries nothing after a check's header.
                        if !matches!(sub, Request::Check { .. }) {
                            write_outcome(w, sub, o);
                        }
                    }
                    Err(e) => {
                        w.i32(op::ERROR).bool(false).i32(e.code()).i32(e.code());
                    }
                }
            }
            w.i32(-1).bool(true).i32(-1);
        }
        _ => {}
    }
}

fn sub_op(req: &Request) -> i32 {
    match req {
        Request::Create {
            op: CreateOp::Create,
            ..
        } => op::CREATE,
        Request::Create { .. } => op::CREATE2,
        Request::Delete { .. } => op::DELETE,
        Request::SetData { .. } => op::SET_DATA,
        Request::Check { .. } => op::CHECK,
        Request::GetData { .. } => op::GET_DATA,
        Request::GetChildren { .. } => op::GET_CHILDREN,
        _ => op::ERROR,
    }
}

/// The reply to a committed write.
pub fn write_reply(
    xid: i32,
    zxid: i64,
    req: &Request,
    result: &Result<Outcome, ErrorCode>,
) -> BytesMut {
    match result {
        Ok(outcome) => frame(xid, zxid, ErrorCode::Ok, |w| write_outcome(w, req, outcome)),
        Err(e) => frame(xid, zxid, *e, |_| {}),
    }
}

/// The answer to a write the leader decided on when it proposed it (a reconfiguration,
/// or a refusal): a reconfiguration is answered as a getData of the new configuration.
pub fn decided_reply(xid: i32, zxid: i64, result: &Result<Outcome, ErrorCode>) -> BytesMut {
    match result {
        Ok(Outcome::Config { data, stat }) => frame(xid, zxid, ErrorCode::Ok, |w| {
            w.buffer(data);
            stat.write(w);
        }),
        Ok(_) => frame(xid, zxid, ErrorCode::Ok, |_| {}),
        Err(e) => frame(xid, zxid, *e, |_| {}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::Reader;
    use crate::proto::Stat;

    fn body(frame: &BytesMut) -> &[u8] {
        // Length prefix, then the ReplyHeader (xid, zxid, err).
        &frame[4 + 16..]
    }

    #[test]
    fn a_check_is_answered_with_its_stat_alone_and_with_nothing_inside_a_multi() {
        let check = Request::Check {
            path: "/a".into(),
            version: 3,
        };
        let stat = Stat {
            version: 3,
            ..Stat::default()
        };
        let alone = write_reply(1, 9, &check, &Ok(Outcome::Stat(stat)));
        assert_eq!(Stat::read(&mut Reader::new(body(&alone))).unwrap(), stat);
        assert_eq!(body(&alone).len(), 68);
        let multi = write_reply(
            2,
            9,
            &Request::Multi(vec![check]),
            &Ok(Outcome::Multi(vec![Ok(Outcome::Stat(stat))])),
        );
        let mut r = Reader::new(body(&multi));
        assert_eq!(
            (r.read_i32(), r.read_bool(), r.read_i32()),
            (Ok(op::CHECK), Ok(false), Ok(0))
        );
        assert_eq!(
            (r.read_i32(), r.read_bool(), r.read_i32()),
            (Ok(-1), Ok(true), Ok(-1)),
            "the done header right after the check's"
        );
        assert_eq!(r.remaining(), 0);
    }
}
