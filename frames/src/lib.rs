//! A Kafka response on its way to the socket, and the encoder that builds it without copying
//! record sets.
//!
//! A Fetch response is mostly records. Encoding them into one contiguous buffer would read
//! them from the segment file into memory and copy them once more into the response. The
//! [`SplicingEncoder`] writes the framing (lengths, partition headers, tagged fields) into
//! a buffer as usual but, when the encoder reaches a record set it was given as a
//! [`RecordsRef`], it ends the current piece and keeps the reference instead of the bytes:
//! a region of a segment file, sent with `sendfile` (the page cache goes to the socket
//! without passing through this process, as Kafka sends fetched records), or bytes already
//! in memory, sent with the framing around them in one vectored write.
//!
//! A record set is recognised by identity, not content: `kafka-protocol` encodes a bytes
//! field with one `put_slice` of the field's whole slice, so a slice that starts at the
//! next registered record set's address and has its length *is* that record set. A file
//! region stands in the response as a slice of that length of a static zeroed area, never
//! read. Record sets are registered in the order the response encodes them (topics, then
//! partitions), so each `put_slice` compares against one candidate; an encoder that did not
//! meet every registered record set refuses to finish, so a stand-in is never sent.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::ops::Range;
use std::sync::OnceLock;

use bytes::buf::UninitSlice;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;
use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

/// Record sets in memory smaller than this are copied: a separate iovec costs more.
const SPLICE_MIN: usize = 4 * 1024;

/// The largest file region that can stand in a response; a larger one (a fetch with a
/// partition limit above 64 MiB) is read into memory instead.
pub const MAX_FILE_REGION: usize = 64 << 20;

/// What stands in for file regions: zeroed memory from the allocator (fresh pages the
/// process never touches: address space, no memory), made once. A zero-initialised
/// `static` array would do the same in `.bss` if it were mutable; an immutable one is
/// placed in `.rodata` and made the binary 64 MiB larger.
fn stand_in_area() -> &'static [u8] {
    static AREA: OnceLock<&'static [u8]> = OnceLock::new();
    AREA.get_or_init(|| Box::leak(vec![0u8; MAX_FILE_REGION].into_boxed_slice()))
}

pub use strata_storage::FileRegion;

#[derive(Debug, Clone)]
enum Chunk {
    Memory(Bytes),
    File(FileRegion),
}

/// A record set of a response, sent by reference. Put [`RecordsRef::stand_in`] in the
/// message's records field and hand the `RecordsRef` to [`SplicingEncoder::new`].
#[derive(Debug)]
pub struct RecordsRef {
    stand_in: Bytes,
    chunk: Chunk,
}

impl RecordsRef {
    /// Bytes already in memory.
    pub fn memory(bytes: Bytes) -> RecordsRef {
        RecordsRef {
            stand_in: bytes.clone(),
            chunk: Chunk::Memory(bytes),
        }
    }

    /// A region of a file; the region back when it cannot stand in a response (empty, or
    /// larger than [`MAX_FILE_REGION`]).
    pub fn file(region: FileRegion) -> Result<RecordsRef, FileRegion> {
        if region.len == 0 || region.len > MAX_FILE_REGION {
            return Err(region);
        }
        Ok(RecordsRef {
            stand_in: Bytes::from_static(&stand_in_area()[..region.len]),
            chunk: Chunk::File(region),
        })
    }

    /// What the response's records field holds until the encoder replaces it.
    pub fn stand_in(&self) -> Bytes {
        self.stand_in.clone()
    }

    fn is(&self, src: &[u8]) -> bool {
        self.stand_in.as_ptr() == src.as_ptr() && self.stand_in.len() == src.len()
    }

    fn worth_splicing(&self) -> bool {
        match &self.chunk {
            Chunk::Memory(b) => b.len() >= SPLICE_MIN,
            Chunk::File(_) => true,
        }
    }
}

/// The bytes of one response, in order: `[length][header][body]`, in pieces of memory and
/// file regions.
#[derive(Debug, Default, Clone)]
pub struct Frames {
    chunks: VecDeque<Chunk>,
    len: usize,
}

impl Frames {
    fn push(&mut self, chunk: Chunk) {
        let len = match &chunk {
            Chunk::Memory(b) => b.len(),
            Chunk::File(r) => r.len,
        };
        if len > 0 {
            self.len += len;
            self.chunks.push_back(chunk);
        }
    }

    /// How many separate pieces the response is made of.
    #[cfg(test)]
    fn pieces(&self) -> usize {
        self.chunks.len()
    }

    /// Sends the response: runs of memory pieces with vectored writes, file regions with
    /// `sendfile`. A file that turns out shorter than its region (truncated since the
    /// read) is an error: the response cannot be completed and the connection must close.
    pub async fn write_to(mut self, socket: &mut TcpStream) -> io::Result<()> {
        while let Some(chunk) = self.chunks.pop_front() {
            match chunk {
                Chunk::File(region) => send_file(socket, &region).await?,
                Chunk::Memory(first) => socket.write_all_buf(&mut self.memory_run(first)).await?,
            }
        }
        Ok(())
    }

    /// Sends the response through a writer that must see every byte (a TLS stream): a
    /// file region is read into memory (it is at most a partition's fetch size) and
    /// written as the rest.
    pub async fn write_copied<W: AsyncWrite + Unpin>(mut self, writer: &mut W) -> io::Result<()> {
        while let Some(chunk) = self.chunks.pop_front() {
            match chunk {
                Chunk::File(region) => {
                    let bytes = region.read().map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("reading a region to send: {e}"),
                        )
                    })?;
                    writer.write_all(&bytes).await?
                }
                Chunk::Memory(first) => writer.write_all_buf(&mut self.memory_run(first)).await?,
            }
        }
        writer.flush().await
    }

    /// `first` and the memory pieces right after it, as one vectored write.
    fn memory_run(&mut self, first: Bytes) -> MemoryRun {
        let mut run = MemoryRun::default();
        run.push(first);
        while matches!(self.chunks.front(), Some(Chunk::Memory(_))) {
            if let Some(Chunk::Memory(next)) = self.chunks.pop_front() {
                run.push(next);
            }
        }
        run
    }
}

impl From<BytesMut> for Frames {
    fn from(buf: BytesMut) -> Frames {
        let mut frames = Frames::default();
        frames.push(Chunk::Memory(buf.freeze()));
        frames
    }
}

async fn send_file(stream: &mut TcpStream, region: &FileRegion) -> io::Result<()> {
    let stream = &*stream;
    let mut offset = region.position;
    let end = region.position + region.len as u64;
    while offset < end {
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            let count = (end - offset) as usize;
            rustix::fs::sendfile(stream, &*region.file, Some(&mut offset), count)
                .map_err(io::Error::from)
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file ends at byte {offset}, inside a region to send (up to {end})"),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Consecutive memory pieces, as one [`Buf`] for `write_all_buf` (vectored writes).
#[derive(Default)]
struct MemoryRun {
    chunks: VecDeque<Bytes>,
    remaining: usize,
}

impl MemoryRun {
    fn push(&mut self, chunk: Bytes) {
        self.remaining += chunk.len();
        self.chunks.push_back(chunk);
    }
}

impl Buf for MemoryRun {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |c| c.as_ref())
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end of a response");
        self.remaining -= cnt;
        while cnt > 0 {
            let front = self
                .chunks
                .front_mut()
                .expect("remaining bytes are in chunks");
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.chunks.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(&self.chunks) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }
}

/// An encode target that copies everything except the registered record sets, which it
/// keeps by reference. See the crate documentation.
pub struct SplicingEncoder {
    /// Everything before `current`.
    done: Frames,
    current: BytesMut,
    /// Record sets still to come, in encoding order.
    shared: VecDeque<RecordsRef>,
}

impl SplicingEncoder {
    /// An encoder for a response of `len` bytes (after the length prefix, which it writes
    /// first). `records` in the order the response encodes them; small ones in memory are
    /// copied as usual (and may be left out).
    pub fn new(len: usize, records: impl IntoIterator<Item = RecordsRef>) -> SplicingEncoder {
        let shared: VecDeque<RecordsRef> = records
            .into_iter()
            .filter(RecordsRef::worth_splicing)
            .collect();
        let spliced: usize = shared.iter().map(|r| r.stand_in.len()).sum();
        // Sized once: the framing of a response never reallocates on the way.
        let mut current = BytesMut::with_capacity(4 + len.saturating_sub(spliced));
        current.put_i32(len as i32);
        SplicingEncoder {
            done: Frames::default(),
            current,
            shared,
        }
    }

    /// The encoded response. `None` when it is not the length announced to [`Self::new`]
    /// (a size computation that disagrees with the encoding), or when a registered record
    /// set was never met (its stand-in would have been copied): never send such a frame.
    pub fn finish(mut self, len: usize) -> Option<Frames> {
        if self.offset() != 4 + len || !self.shared.is_empty() {
            return None;
        }
        let tail = self.current.split().freeze();
        self.done.push(Chunk::Memory(tail));
        Some(self.done)
    }
}

// SAFETY: every method forwards to `current`, a `BytesMut`, whose implementation upholds
// the trait's contract; `put_slice` only appends (or splices a whole slice by reference).
#[allow(unsafe_code)]
unsafe impl BufMut for SplicingEncoder {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    #[allow(unsafe_code)]
    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise about `cnt` is about `chunk_mut`, i.e. `current`.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if self.shared.front().is_some_and(|r| r.is(src)) {
            let records = self.shared.pop_front().expect("checked");
            let piece = self.current.split().freeze();
            self.done.push(Chunk::Memory(piece));
            self.done.push(records.chunk);
        } else {
            self.current.extend_from_slice(src);
        }
    }
}

impl ByteBufMut for SplicingEncoder {
    fn offset(&self) -> usize {
        self.done.len + self.current.len()
    }

    // Gaps (written now, filled in later) are used by record batch encoding, never by a
    // response that carries record sets; they can only reach into `current`.
    fn seek(&mut self, offset: usize) {
        let local = offset
            .checked_sub(self.done.len)
            .expect("seek before a spliced record set");
        self.current.resize(local, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let flushed = self.done.len;
        let start = r
            .start
            .checked_sub(flushed)
            .expect("gap before a spliced record set");
        &mut self.current[start..r.end - flushed]
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;
    use std::sync::Arc;

    use kafka_protocol::messages::fetch_response::{
        EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
    };
    use kafka_protocol::messages::{BrokerId, FetchResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// What a client reads when `frames` are written to a real socket; written through
    /// [`Frames::write_copied`] (as to a TLS stream) the bytes are the same.
    async fn sent(frames: Frames) -> io::Result<Vec<u8>> {
        let mut copied = Vec::new();
        let copy = frames.clone().write_copied(&mut copied).await;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let client = TcpStream::connect(listener.local_addr()?).await?;
        let (mut server, _) = listener.accept().await?;
        let reading = tokio::spawn(async move {
            let mut client = client;
            let mut out = Vec::new();
            client.read_to_end(&mut out).await.map(|_| out)
        });
        let written = frames.write_to(&mut server).await;
        drop(server);
        let out = reading.await.expect("reader")?;
        assert_eq!(written.is_ok(), copy.is_ok());
        if written.is_ok() {
            assert_eq!(out, copied, "write_copied sends what write_to sends");
        }
        written.map(|()| out)
    }

    fn file_with(content: &[u8]) -> Arc<File> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        Arc::new(f)
    }

    #[tokio::test]
    async fn registered_record_sets_are_kept_by_reference() {
        let big = Bytes::from(vec![7u8; SPLICE_MIN]);
        let small = Bytes::from_static(b"tiny");
        let body_len = 2 + SPLICE_MIN + 1 + 4 + SPLICE_MIN;
        let mut enc = SplicingEncoder::new(
            body_len,
            [
                RecordsRef::memory(big.clone()),
                RecordsRef::memory(small.clone()),
            ],
        );
        enc.put_u16(1);
        enc.put_slice(&big);
        enc.put_u8(2);
        enc.put_slice(&small);
        enc.put_slice(&big.clone()); // same bytes again, but no longer registered
        let frames = enc.finish(body_len).unwrap();
        // [length u16], big, [u8 small big-copy]
        assert_eq!(frames.pieces(), 3);
        assert!(matches!(&frames.chunks[1], Chunk::Memory(b) if b.as_ptr() == big.as_ptr()));
        let bytes = sent(frames).await.unwrap();
        assert_eq!(bytes.len(), 4 + body_len);
        assert_eq!(&bytes[..4], &(body_len as i32).to_be_bytes());
        assert_eq!(bytes[4..6], [0, 1]);
        assert!(bytes[6..6 + SPLICE_MIN].iter().all(|&b| b == 7));
        assert_eq!(&bytes[7 + SPLICE_MIN..11 + SPLICE_MIN], b"tiny");
    }

    #[test]
    fn a_record_set_never_met_refuses_the_frame() {
        let big = Bytes::from(vec![1u8; SPLICE_MIN]);
        let copy = big.to_vec();
        let mut enc = SplicingEncoder::new(SPLICE_MIN, [RecordsRef::memory(big.clone())]);
        // Equal bytes elsewhere are not the registered record set: copied, and the record
        // set itself was never encoded.
        enc.put_slice(&copy);
        assert!(enc.finish(SPLICE_MIN).is_none());
    }

    #[tokio::test]
    async fn file_regions_are_sent_from_the_file() {
        let file = file_with(b"0123456789abcdefghij");
        let region = FileRegion {
            file: file.clone(),
            position: 3,
            len: 10,
        };
        let records = RecordsRef::file(region).unwrap();
        let stand_in = records.stand_in();
        let mut enc = SplicingEncoder::new(12, [records]);
        enc.put_u8(b'<');
        enc.put_slice(&stand_in);
        enc.put_u8(b'>');
        let frames = enc.finish(12).unwrap();
        assert_eq!(frames.pieces(), 3);
        assert_eq!(sent(frames).await.unwrap(), b"\0\0\0\x0c<3456789abc>");

        // A file cut short since the read: the response cannot be completed.
        let cut = FileRegion {
            file: file_with(b"short"),
            position: 2,
            len: 10,
        };
        let records = RecordsRef::file(cut).unwrap();
        let stand_in = records.stand_in();
        let mut enc = SplicingEncoder::new(10, [records]);
        enc.put_slice(&stand_in);
        let err = sent(enc.finish(10).unwrap()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn regions_that_cannot_stand_in_a_response_are_handed_back() {
        let file = file_with(b"x");
        for len in [0, MAX_FILE_REGION + 1] {
            let region = FileRegion {
                file: file.clone(),
                position: 0,
                len,
            };
            assert_eq!(RecordsRef::file(region).unwrap_err().len, len);
        }
    }

    #[test]
    fn memory_runs_advance_across_pieces() {
        let mut run = MemoryRun::default();
        run.push(Bytes::from_static(b"abc"));
        run.push(Bytes::from_static(b"defg"));
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(run.chunks_vectored(&mut slices), 2);
        run.advance(4);
        assert_eq!(run.chunk(), b"efg");
        assert_eq!(run.remaining(), 3);
    }

    #[tokio::test]
    async fn gaps_inside_the_current_piece_work() {
        let mut enc = SplicingEncoder::new(6, []);
        enc.put_u8(9);
        let gap = enc.put_gap(4);
        enc.put_u8(8);
        enc.gap_buf(gap).copy_from_slice(&[1, 2, 3, 4]);
        let frames = enc.finish(6).unwrap();
        assert_eq!(
            sent(frames).await.unwrap(),
            vec![0, 0, 0, 6, 9, 1, 2, 3, 4, 8]
        );
    }

    #[test]
    fn a_length_that_disagrees_is_refused() {
        let mut enc = SplicingEncoder::new(3, []);
        enc.put_u16(1);
        assert!(enc.finish(3).is_none());
    }

    /// What a broker sends for every Fetch version a client or follower may ask for: the
    /// same bytes as `kafka-protocol`'s own encoding of the records into one buffer, with
    /// record sets sent from a segment file and from memory.
    #[tokio::test]
    async fn fetch_responses_encode_as_kafka_protocol_does() {
        let segment: Vec<u8> = (0..5 * SPLICE_MIN).map(|i| (i % 251) as u8).collect();
        let file = file_with(&segment);
        let region = |position: usize, len: usize| FileRegion {
            file: file.clone(),
            position: position as u64,
            len,
        };
        let in_memory = Bytes::from(vec![5u8; 2 * SPLICE_MIN + 3]);
        let partition = |index: i32| {
            PartitionData::default()
                .with_partition_index(index)
                .with_high_watermark(1_000 + i64::from(index))
                .with_log_start_offset(5)
        };
        for version in 4..=17i16 {
            // The response as a client must see it, records in place...
            let mut expected = FetchResponse::default()
                .with_throttle_time_ms(1)
                .with_session_id(if version >= 7 { 42 } else { 0 });
            // ... and as the broker encodes it, with stand-ins and references.
            let mut refs = Vec::new();
            let mut response = expected.clone();
            for (t, name) in ["orders", "events"].iter().enumerate() {
                let regions = [region(t * 100, 3 * SPLICE_MIN), region(17, 77)];
                let mut topic = FetchableTopicResponse::default();
                if version >= 13 {
                    topic.topic_id = uuid::Uuid::from_u128(0x5eed + t as u128);
                } else {
                    topic.topic = TopicName(StrBytes::from_static_str(name));
                }
                let mut wire_topic = topic.clone();
                for (p, r) in regions.iter().enumerate() {
                    let mut data = partition(p as i32);
                    if version >= 12 && p == 0 {
                        data.diverging_epoch =
                            EpochEndOffset::default().with_epoch(3).with_end_offset(77);
                        data.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(2))
                            .with_leader_epoch(4);
                    }
                    let at = r.position as usize;
                    topic.partitions.push(
                        data.clone()
                            .with_records(Some(Bytes::copy_from_slice(&segment[at..at + r.len]))),
                    );
                    let records = RecordsRef::file(r.clone()).unwrap();
                    wire_topic
                        .partitions
                        .push(data.with_records(Some(records.stand_in())));
                    refs.push(records);
                }
                let small = partition(7).with_records(Some(Bytes::from_static(b"small batch")));
                topic.partitions.push(small.clone());
                wire_topic.partitions.push(small);
                let memory = partition(8).with_records(Some(in_memory.clone()));
                topic.partitions.push(memory.clone());
                wire_topic.partitions.push(memory);
                refs.push(RecordsRef::memory(in_memory.clone()));
                expected.responses.push(topic);
                response.responses.push(wire_topic);
            }
            if version >= 16 {
                let endpoint = NodeEndpoint::default()
                    .with_node_id(BrokerId(2))
                    .with_host(StrBytes::from_static_str("broker-2"))
                    .with_port(9092);
                expected.node_endpoints = vec![endpoint.clone()];
                response.node_endpoints = vec![endpoint];
            }
            let mut plain = BytesMut::new();
            plain.put_i32(expected.compute_size(version).unwrap() as i32);
            expected.encode(&mut plain, version).unwrap();

            let len = response.compute_size(version).unwrap();
            let mut spliced = SplicingEncoder::new(len, refs);
            response.encode(&mut spliced, version).unwrap();
            let frames = spliced.finish(len).unwrap();
            // 6 record sets by reference and the framing around them.
            assert!(
                frames.pieces() >= 12,
                "v{version}: {} pieces",
                frames.pieces()
            );
            assert_eq!(sent(frames).await.unwrap(), plain.to_vec(), "v{version}");
        }
    }
}
