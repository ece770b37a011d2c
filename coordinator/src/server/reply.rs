//! A connection's reply queue, from the processor to the connection's writer: bounded in
//! frames and in bytes, so a client that sends requests and never reads the replies (a
//! getData of a 1 MiB znode, pipelined) is disconnected as too slow once it holds
//! [`MAX_QUEUED_BYTES`], instead of making the server hold gigabytes for it. Such a
//! client is cut off with [`ReplySender::abort`], which stops a writer blocked on the
//! full socket too: a graceful close would wait behind the replies it never reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::BytesMut;
use tokio::sync::{Notify, mpsc};

/// Frames queued to one client before it counts as too slow.
pub const MAX_QUEUED_FRAMES: usize = 8192;
/// Reply bytes queued to one client before it counts as too slow: 64 times
/// `jute.maxbuffer`, far beyond what a client that reads its replies ever has waiting.
pub const MAX_QUEUED_BYTES: usize = 64 << 20;

pub enum Outgoing {
    Frame(BytesMut),
    /// Flush and close the connection.
    Close,
}

/// The queue is full (in frames or in bytes), or its connection is gone.
#[derive(Debug)]
pub struct Full;

/// What both ends share.
#[derive(Default)]
struct Shared {
    /// Bytes of the frames in the channel.
    queued: AtomicUsize,
    aborted: AtomicBool,
    abort: Notify,
}

/// A new queue's two ends.
pub fn queue() -> (ReplySender, ReplyReceiver) {
    let (tx, rx) = mpsc::channel(MAX_QUEUED_FRAMES);
    let shared = Arc::new(Shared::default());
    (
        ReplySender {
            tx,
            shared: shared.clone(),
        },
        ReplyReceiver { rx, shared },
    )
}

#[derive(Clone)]
pub struct ReplySender {
    tx: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
}

impl ReplySender {
    /// Queues `out` without waiting; a frame that would pass [`MAX_QUEUED_BYTES`] is
    /// refused (a close never is, if there is room for it).
    pub fn try_send(&self, out: Outgoing) -> Result<(), Full> {
        let len = match &out {
            Outgoing::Frame(f) => f.len(),
            Outgoing::Close => 0,
        };
        let queued = &self.shared.queued;
        if len > 0 && queued.load(Ordering::Relaxed) + len > MAX_QUEUED_BYTES {
            return Err(Full);
        }
        queued.fetch_add(len, Ordering::Relaxed);
        self.tx.try_send(out).map_err(|_| {
            queued.fetch_sub(len, Ordering::Relaxed);
            Full
        })
    }

    /// Drops the connection now, whatever is queued or half written.
    pub fn abort(&self) {
        self.shared.aborted.store(true, Ordering::Relaxed);
        self.shared.abort.notify_one();
    }
}

pub struct ReplyReceiver {
    rx: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
}

impl ReplyReceiver {
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let out = self.rx.recv().await;
        self.taken(out)
    }

    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let out = self.rx.try_recv().ok();
        self.taken(out)
    }

    /// What resolves once the sender has called [`ReplySender::abort`].
    pub fn abort_signal(&self) -> AbortSignal {
        AbortSignal(self.shared.clone())
    }

    fn taken(&self, out: Option<Outgoing>) -> Option<Outgoing> {
        if let Some(Outgoing::Frame(f)) = &out {
            self.shared.queued.fetch_sub(f.len(), Ordering::Relaxed);
        }
        out
    }
}

/// See [`ReplyReceiver::abort_signal`].
pub struct AbortSignal(Arc<Shared>);

impl AbortSignal {
    pub async fn wait(self) {
        while !self.0.aborted.load(Ordering::Relaxed) {
            self.0.abort.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_bytes_and_freed_as_the_writer_takes_frames() {
        let (tx, mut rx) = queue();
        let frame = || Outgoing::Frame(BytesMut::zeroed(MAX_QUEUED_BYTES / 4));
        for _ in 0..4 {
            tx.try_send(frame()).unwrap();
        }
        assert!(
            tx.try_send(frame()).is_err(),
            "a fifth quarter does not fit"
        );
        tx.try_send(Outgoing::Close).unwrap();
        assert!(matches!(rx.try_recv(), Some(Outgoing::Frame(_))));
        tx.try_send(frame()).unwrap();
        assert!(tx.try_send(frame()).is_err());
    }
}
