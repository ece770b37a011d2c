//! Jute, ZooKeeper's serialization format: big-endian integers, length-prefixed
//! buffers and strings (length -1 means null), length-prefixed vectors.
//!
//! A null buffer is not an empty one: ZooKeeper stores a znode created without data as
//! `null` and hands it back with length -1, and clients tell the two apart (Kafka reads
//! a null `/latest_producer_id_block` as "no block allocated yet" and an empty one as
//! corrupt JSON). So buffers decode to `Option<Vec<u8>>` and every caller decides.
//!
//! Every length read from the wire is checked against what is left in the frame, so a
//! hostile or truncated frame is a [`JuteError`], never a panic or a huge allocation.

use bytes::{Buf, BufMut, BytesMut};

/// A frame could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JuteError {
    #[error("frame ended while reading {0}")]
    Truncated(&'static str),
    #[error("negative or oversized length {0}")]
    BadLength(i32),
    #[error("string is not UTF-8")]
    BadUtf8,
}

pub type Result<T> = std::result::Result<T, JuteError>;

/// Reads jute primitives from one frame.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn read_i32(&mut self) -> Result<i32> {
        if self.buf.len() < 4 {
            return Err(JuteError::Truncated("int"));
        }
        Ok(self.buf.get_i32())
    }

    pub fn read_i64(&mut self) -> Result<i64> {
        if self.buf.len() < 8 {
            return Err(JuteError::Truncated("long"));
        }
        Ok(self.buf.get_i64())
    }

    pub fn read_bool(&mut self) -> Result<bool> {
        if self.buf.is_empty() {
            return Err(JuteError::Truncated("boolean"));
        }
        Ok(self.buf.get_u8() != 0)
    }

    /// A buffer; `None` is jute's null (length -1).
    pub fn read_buffer(&mut self) -> Result<Option<Vec<u8>>> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(JuteError::BadLength(len));
        }
        if len as usize > self.buf.len() {
            return Err(JuteError::BadLength(len));
        }
        let out = self.buf[..len as usize].to_vec();
        self.buf.advance(len as usize);
        Ok(Some(out))
    }

    /// A buffer where null and empty mean the same (passwords, auth data).
    pub fn read_bytes(&mut self) -> Result<Vec<u8>> {
        Ok(self.read_buffer()?.unwrap_or_default())
    }

    /// A string; a null string reads as empty (no request field ZooKeeper accepts as
    /// null differs from empty).
    pub fn read_string(&mut self) -> Result<String> {
        String::from_utf8(self.read_bytes()?).map_err(|_| JuteError::BadUtf8)
    }

    /// A vector length; -1 (null) reads as 0. Each element takes at least one byte, so a
    /// length larger than the rest of the frame is rejected before anything is allocated.
    pub fn read_len(&mut self) -> Result<usize> {
        let len = self.read_i32()?;
        if len < 0 {
            return Ok(0);
        }
        if len as usize > self.buf.len() {
            return Err(JuteError::BadLength(len));
        }
        Ok(len as usize)
    }

    pub fn read_strings(&mut self) -> Result<Vec<String>> {
        let n = self.read_len()?;
        (0..n).map(|_| self.read_string()).collect()
    }
}

/// Writes jute primitives into a growing buffer.
#[derive(Default)]
pub struct Writer {
    pub buf: BytesMut,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.put_i32(v);
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.put_i64(v);
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.put_u8(v as u8);
        self
    }

    pub fn buffer(&mut self, v: &[u8]) -> &mut Self {
        self.buf.put_i32(v.len() as i32);
        self.buf.put_slice(v);
        self
    }

    /// A buffer that may be null: `None` is written as length -1.
    pub fn nullable_buffer(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(v) => self.buffer(v),
            None => self.i32(-1),
        }
    }

    pub fn string(&mut self, v: &str) -> &mut Self {
        self.buffer(v.as_bytes())
    }

    pub fn strings(&mut self, v: &[String]) -> &mut Self {
        self.i32(v.len() as i32);
        for s in v {
            self.string(s);
        }
        self
    }

    /// The frame with its 4-byte length prefix, ready for the socket.
    pub fn into_frame(self) -> BytesMut {
        let mut out = BytesMut::with_capacity(self.buf.len() + 4);
        out.put_i32(self.buf.len() as i32);
        out.extend_from_slice(&self.buf);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut w = Writer::new();
        w.i32(-7)
            .i64(1 << 40)
            .bool(true)
            .string("/a")
            .strings(&["x".into(), "yz".into()]);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.read_i32().unwrap(), -7);
        assert_eq!(r.read_i64().unwrap(), 1 << 40);
        assert!(r.read_bool().unwrap());
        assert_eq!(r.read_string().unwrap(), "/a");
        assert_eq!(r.read_strings().unwrap(), vec!["x", "yz"]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn lying_lengths_are_errors_not_allocations() {
        let mut w = Writer::new();
        w.i32(i32::MAX);
        assert_eq!(
            Reader::new(&w.buf).read_buffer(),
            Err(JuteError::BadLength(i32::MAX))
        );
        assert_eq!(
            Reader::new(&w.buf).read_strings(),
            Err(JuteError::BadLength(i32::MAX))
        );
        assert_eq!(
            Reader::new(&[0, 0]).read_i32(),
            Err(JuteError::Truncated("int"))
        );
    }

    #[test]
    fn null_and_empty_buffers_stay_apart() {
        let mut w = Writer::new();
        w.nullable_buffer(None)
            .nullable_buffer(Some(b""))
            .nullable_buffer(Some(b"x"));
        assert_eq!(&w.buf[..8], &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.read_buffer().unwrap(), None);
        assert_eq!(r.read_buffer().unwrap(), Some(Vec::new()));
        assert_eq!(r.read_buffer().unwrap(), Some(b"x".to_vec()));
        // Where null and empty mean the same, null reads as empty.
        let mut w = Writer::new();
        w.nullable_buffer(None);
        assert_eq!(Reader::new(&w.buf).read_bytes().unwrap(), Vec::<u8>::new());
        // Any other negative length is a lie, not a null.
        let mut w = Writer::new();
        w.i32(-2);
        assert_eq!(
            Reader::new(&w.buf).read_buffer(),
            Err(JuteError::BadLength(-2))
        );
    }
}
