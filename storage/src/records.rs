//! Looking inside a batch without holding it: the records section is decompressed through
//! a streaming reader and walked record by record, so a small compressed batch that
//! inflates to gigabytes (a "zip bomb") costs CPU, never memory.
//!
//! The broker looks inside a batch it accepts only for a compacted topic, which refuses a
//! record without a key (Kafka's `LogValidator.validateKey`). Such a batch is also refused
//! when its records inflate beyond [`MAX_DECOMPRESSED_BATCH_BYTES`]: the cleaner rewrites a
//! compacted topic's batches in memory, so what it will hold must be bounded when the
//! batch comes in. Kafka has no such bound (its cleaner streams too); 64 MiB is far above
//! what producers batch (librdkafka's `batch.size` default is 1 MB, the Java producer's
//! 16 KiB), and the error is MESSAGE_TOO_LARGE, on which the Java producer splits a batch
//! and retries.
//!
//! Codecs as Kafka frames them: gzip (possibly several members, as Java's
//! `GZIPInputStream` reads them), snappy in xerial's block framing (or one raw block when
//! the framing's magic is absent, as snappy-java falls back), LZ4 frames, zstd frames.

use std::io::{self, Read};
use std::ops::ControlFlow;

use crate::batch::{RECORD_BATCH_OVERHEAD, RecordBatch};
use crate::error::LogError;

/// Most bytes a compacted topic's batch may decompress to.
pub const MAX_DECOMPRESSED_BATCH_BYTES: u64 = 64 << 20;

/// Most bytes a lookup inside a stored batch (ListOffsets by timestamp) decompresses: any
/// topic's batches were accepted without looking inside, so this bounds the CPU one
/// lookup may spend on a zip bomb; memory is bounded by streaming.
pub const MAX_LOOKUP_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// Largest snappy block accepted: xerial's framing writes 32 KiB blocks; a raw (unframed)
/// block is the whole batch.
const MAX_SNAPPY_BLOCK: usize = 16 << 20;

/// What a walk over a batch's records found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordsScan {
    pub records: i32,
    pub without_key: i32,
    /// Bytes of the (decompressed) records section.
    pub bytes: u64,
}

/// One record's place in its batch, as the walk meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo {
    pub offset_delta: i64,
    pub timestamp_delta: i64,
    pub keyed: bool,
}

/// Walk the records of `batch`, reading at most `max_bytes` of decompressed records.
pub fn scan(batch: &RecordBatch, max_bytes: u64) -> Result<RecordsScan, LogError> {
    visit(batch, max_bytes, |_| ControlFlow::Continue(()))
}

/// Walk the records of `batch` like [`scan`], handing each to `each` until it breaks; the
/// count is checked only when the walk reaches the end.
pub fn visit(
    batch: &RecordBatch,
    max_bytes: u64,
    mut each: impl FnMut(RecordInfo) -> ControlFlow<()>,
) -> Result<RecordsScan, LogError> {
    let body = &batch.as_bytes()[RECORD_BATCH_OVERHEAD..];
    let corrupt = |e: io::Error| LogError::CorruptRecord(format!("decoding record batch: {e}"));
    let inner: Box<dyn Read + '_> = match batch.compression() {
        0 => Box::new(body),
        1 => Box::new(flate2::read::MultiGzDecoder::new(body)),
        2 => Box::new(XerialSnappy::new(body)),
        3 => Box::new(lz4::Decoder::new(body).map_err(corrupt)?),
        4 => Box::new(zstd::stream::read::Decoder::new(body).map_err(corrupt)?),
        c => {
            return Err(LogError::CorruptRecord(format!(
                "unknown compression codec {c}"
            )));
        }
    };
    let mut r = Counted {
        inner: inner.take(max_bytes + 1),
        read: 0,
    };
    let mut out = RecordsScan::default();
    let too_large = || LogError::DecompressedTooLarge { max: max_bytes };
    for _ in 0..batch.records_count() {
        let step = (|| -> io::Result<Option<RecordInfo>> {
            let Some(len) = read_varint(&mut r, true)? else {
                return Ok(None);
            };
            let start = r.read;
            let mut attributes = [0u8; 1];
            r.read_exact(&mut attributes)?;
            let timestamp_delta = read_varint(&mut r, false)?.unwrap_or(0);
            let offset_delta = read_varint(&mut r, false)?.unwrap_or(0);
            let key_len = read_varint(&mut r, false)?.unwrap_or(-1);
            let consumed = r.read - start;
            let rest = u64::try_from(len)
                .ok()
                .and_then(|l| l.checked_sub(consumed))
                .ok_or_else(|| invalid("record shorter than its header"))?;
            // The rest of the record (key, value, headers) is read and thrown away.
            let skipped = io::copy(&mut (&mut r).take(rest), &mut io::sink())?;
            if skipped != rest {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            Ok(Some(RecordInfo {
                offset_delta,
                timestamp_delta,
                keyed: key_len >= 0,
            }))
        })();
        if r.read > max_bytes {
            return Err(too_large());
        }
        match step {
            Ok(Some(record)) => {
                out.records += 1;
                if !record.keyed {
                    out.without_key += 1;
                }
                if each(record).is_break() {
                    out.bytes = r.read;
                    return Ok(out);
                }
            }
            Ok(None) => break,
            Err(e) => return Err(corrupt(e)),
        }
    }
    if out.records != batch.records_count() {
        return Err(LogError::CorruptRecord(format!(
            "record batch says {} records but holds {}",
            batch.records_count(),
            out.records
        )));
    }
    out.bytes = r.read;
    Ok(out)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A zigzag varint (`varlong` when the value needs more than 32 bits). `None` at a clean
/// end of input when `eof_ok`.
fn read_varint(r: &mut impl Read, eof_ok: bool) -> io::Result<Option<i64>> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let mut b = [0u8; 1];
        if r.read(&mut b)? == 0 {
            if i == 0 && eof_ok {
                return Ok(None);
            }
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        value |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(Some((value >> 1) as i64 ^ -((value & 1) as i64)));
        }
    }
    Err(invalid("varint longer than 10 bytes"))
}

/// Counts what passes through.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER: usize = 16;

/// Snappy as Kafka's clients write it: xerial's 16-byte header, then blocks of
/// `length (u32 BE) | raw snappy`; without the header, one raw block.
struct XerialSnappy<'a> {
    src: &'a [u8],
    block: Vec<u8>,
    pos: usize,
    framed: bool,
    started: bool,
}

impl<'a> XerialSnappy<'a> {
    fn new(src: &'a [u8]) -> XerialSnappy<'a> {
        XerialSnappy {
            src,
            block: Vec::new(),
            pos: 0,
            framed: false,
            started: false,
        }
    }

    /// Decompress the next block into `self.block`; `false` at the end.
    fn next_block(&mut self) -> io::Result<bool> {
        if !self.started {
            self.started = true;
            self.framed = self.src.len() >= XERIAL_HEADER && &self.src[..8] == XERIAL_MAGIC;
            if self.framed {
                self.src = &self.src[XERIAL_HEADER..];
            } else {
                let whole = std::mem::take(&mut self.src);
                self.decompress(whole)?;
                return Ok(true);
            }
        }
        if !self.framed || self.src.is_empty() {
            return Ok(false);
        }
        if self.src.len() < 4 {
            return Err(invalid("truncated snappy block length"));
        }
        let len = u32::from_be_bytes(self.src[..4].try_into().expect("4 bytes")) as usize;
        let compressed = self
            .src
            .get(4..4 + len)
            .ok_or_else(|| invalid("truncated snappy block"))?;
        self.src = &self.src[4 + len..];
        self.decompress(compressed)?;
        Ok(true)
    }

    fn decompress(&mut self, compressed: &[u8]) -> io::Result<()> {
        let n = snap::raw::decompress_len(compressed).map_err(|e| invalid(&e.to_string()))?;
        if n > MAX_SNAPPY_BLOCK {
            return Err(invalid("snappy block larger than 16 MiB"));
        }
        self.block.clear();
        self.block.resize(n, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(|e| invalid(&e.to_string()))?;
        self.pos = 0;
        Ok(())
    }
}

impl Read for XerialSnappy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{BatchSpec, encode_batch, encode_keyed};
    use kafka_protocol::records::Compression;

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn spec(compression: Compression) -> BatchSpec {
        BatchSpec {
            compression,
            ..BatchSpec::default()
        }
    }

    #[test]
    fn every_codec_is_walked_record_by_record() {
        let values: Vec<String> = (0..50).map(|i| "v".repeat(i * 300)).collect();
        let rows: Vec<(Option<&str>, Option<&str>, i64)> = (0..50)
            .map(|i| ((i % 7 != 3).then_some("k"), Some(values[i].as_str()), 1_000))
            .collect();
        for codec in CODECS {
            let bytes = encode_keyed(&spec(codec), &rows);
            let batch = RecordBatch::parse(&bytes).unwrap();
            let scan = scan(&batch, MAX_DECOMPRESSED_BATCH_BYTES).unwrap();
            assert_eq!(
                (scan.records, scan.without_key),
                (50, 7),
                "{codec:?}: keyless records are those with i % 7 == 3"
            );
            assert!(scan.bytes > 50 * 49 / 2 * 300, "{codec:?}: {scan:?}");
        }
    }

    #[test]
    fn a_batch_inflating_past_the_limit_is_too_large_for_every_codec() {
        for codec in CODECS {
            let bytes = encode_batch(&BatchSpec {
                count: 4,
                value_size: 1 << 20,
                ..spec(codec)
            });
            let batch = RecordBatch::parse(&bytes).unwrap();
            assert!(
                matches!(
                    scan(&batch, 3 << 20),
                    Err(LogError::DecompressedTooLarge { max }) if max == 3 << 20
                ),
                "{codec:?}"
            );
            assert_eq!(scan(&batch, 5 << 20).unwrap().records, 4, "{codec:?}");
        }
    }

    #[test]
    fn a_batch_claiming_more_records_than_it_holds_is_corrupt() {
        let mut bytes = encode_batch(&spec(Compression::None)).to_vec();
        // The records count (offset 57) says 2; the CRC is not what is checked here.
        bytes[57..61].copy_from_slice(&2i32.to_be_bytes());
        let batch = RecordBatch::parse(&bytes).unwrap();
        assert!(matches!(
            scan(&batch, 1 << 20),
            Err(LogError::CorruptRecord(_))
        ));
    }

    #[test]
    fn garbage_in_a_compressed_body_is_corrupt_not_a_panic() {
        for codec in CODECS.into_iter().skip(1) {
            let mut bytes = encode_batch(&BatchSpec {
                value_size: 4000,
                ..spec(codec)
            })
            .to_vec();
            let n = bytes.len();
            for b in &mut bytes[RECORD_BATCH_OVERHEAD + 4..n - 2] {
                *b = b.wrapping_mul(31).wrapping_add(7);
            }
            let batch = RecordBatch::parse(&bytes).unwrap();
            assert!(
                matches!(scan(&batch, 1 << 20), Err(LogError::CorruptRecord(_))),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn varints_are_zigzag() {
        let read = |b: &[u8]| read_varint(&mut &b[..], false).unwrap().unwrap();
        assert_eq!(read(&[0x00]), 0);
        assert_eq!(read(&[0x01]), -1);
        assert_eq!(read(&[0x02]), 1);
        assert_eq!(read(&[0xac, 0x02]), 150);
        assert!(read_varint(&mut &[0x80u8; 11][..], false).is_err());
        assert_eq!(read_varint(&mut &[][..], true).unwrap(), None);
    }
}
