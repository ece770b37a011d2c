//! The primitives of Kafka's flexible message versions (KIP-482): big-endian integers,
//! compact strings and arrays (unsigned varint length + 1, 0 meaning null) and tagged
//! fields. Every length read is checked against what is left of the frame, so a hostile
//! frame is a [`WireError`], never a panic or a huge allocation.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("frame ended while reading {0}")]
    Truncated(&'static str),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("version {version} of {api} is not supported")]
    UnsupportedVersion { api: &'static str, version: i16 },
}

pub type Result<T> = std::result::Result<T, WireError>;

/// Encodes one flexible message.
#[derive(Default)]
pub struct WireWriter {
    buf: BytesMut,
}

impl WireWriter {
    pub fn new() -> WireWriter {
        WireWriter::default()
    }

    pub fn into_bytes(self) -> BytesMut {
        self.buf
    }

    pub fn i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }

    pub fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    pub fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    pub fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    pub fn bool(&mut self, v: bool) {
        self.buf.put_u8(u8::from(v));
    }

    pub fn uuid(&mut self, v: Uuid) {
        self.buf.put_slice(v.as_bytes());
    }

    pub fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    pub fn string(&mut self, v: &str) {
        self.uvarint(v.len() as u32 + 1);
        self.buf.put_slice(v.as_bytes());
    }

    pub fn nullable_string(&mut self, v: Option<&str>) {
        match v {
            Some(s) => self.string(s),
            None => self.uvarint(0),
        }
    }

    pub fn array<T>(&mut self, items: &[T], mut each: impl FnMut(&mut WireWriter, &T)) {
        self.uvarint(items.len() as u32 + 1);
        for item in items {
            each(self, item);
        }
    }

    pub fn i32_array(&mut self, items: &[i32]) {
        self.array(items, |w, v| w.i32(*v));
    }

    /// A tagged-field section with only the given `(tag, bytes)` fields, in tag order.
    pub fn tagged_fields(&mut self, fields: &[(u32, &[u8])]) {
        self.uvarint(fields.len() as u32);
        for (tag, bytes) in fields {
            self.uvarint(*tag);
            self.uvarint(bytes.len() as u32);
            self.buf.put_slice(bytes);
        }
    }

    /// An empty tagged-field section.
    pub fn no_tagged_fields(&mut self) {
        self.uvarint(0);
    }
}

/// Decodes one flexible message.
pub struct WireReader {
    buf: Bytes,
}

impl WireReader {
    pub fn new(buf: Bytes) -> WireReader {
        WireReader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes> {
        if self.buf.len() < n {
            return Err(WireError::Truncated(what));
        }
        Ok(self.buf.split_to(n))
    }

    pub fn i8(&mut self) -> Result<i8> {
        Ok(self.take(1, "int8")?[0] as i8)
    }

    pub fn i16(&mut self) -> Result<i16> {
        let b = self.take(2, "int16")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Result<i32> {
        let b = self.take(4, "int32")?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> Result<i64> {
        let b = self.take(8, "int64")?;
        Ok(i64::from_be_bytes(b[..].try_into().expect("8 bytes")))
    }

    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.i8()? != 0)
    }

    pub fn uuid(&mut self) -> Result<Uuid> {
        let b = self.take(16, "uuid")?;
        Ok(Uuid::from_bytes(b[..].try_into().expect("16 bytes")))
    }

    pub fn uvarint(&mut self) -> Result<u32> {
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            let byte = self.i8()? as u8;
            value |= u32::from(byte & 0x7f)
                .checked_shl(shift)
                .ok_or(WireError::Malformed("varint"))?;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::Malformed("varint"))
    }

    /// A compact length: `None` for null.
    fn compact_len(&mut self, what: &'static str) -> Result<Option<usize>> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        let len = (n - 1) as usize;
        if len > self.buf.len() {
            return Err(WireError::Truncated(what));
        }
        Ok(Some(len))
    }

    pub fn nullable_string(&mut self) -> Result<Option<String>> {
        let Some(len) = self.compact_len("string")? else {
            return Ok(None);
        };
        let bytes = self.take(len, "string")?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| WireError::Malformed("UTF-8 string"))
    }

    pub fn string(&mut self) -> Result<String> {
        self.nullable_string()?
            .ok_or(WireError::Malformed("null non-nullable string"))
    }

    /// A compact array; each element must take at least one byte, which bounds the
    /// allocation by the frame size.
    pub fn array<T>(
        &mut self,
        mut each: impl FnMut(&mut WireReader) -> Result<T>,
    ) -> Result<Vec<T>> {
        let Some(len) = self.compact_len("array")? else {
            return Ok(Vec::new());
        };
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(each(self)?);
        }
        Ok(items)
    }

    pub fn i32_array(&mut self) -> Result<Vec<i32>> {
        self.array(|r| r.i32())
    }

    /// Reads a tagged-field section, returning the fields as `(tag, bytes)`.
    pub fn tagged_fields(&mut self) -> Result<Vec<(u32, Bytes)>> {
        let count = self.uvarint()?;
        let mut fields = Vec::new();
        for _ in 0..count {
            let tag = self.uvarint()?;
            let len = self.uvarint()? as usize;
            fields.push((tag, self.take(len, "tagged field")?));
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut w = WireWriter::new();
        w.uvarint(300);
        w.string("topic");
        w.nullable_string(None);
        w.i32_array(&[1, 2, 3]);
        w.uuid(Uuid::from_u128(7));
        w.tagged_fields(&[(0, &[5])]);
        let mut r = WireReader::new(w.into_bytes().freeze());
        assert_eq!(r.uvarint().unwrap(), 300);
        assert_eq!(r.string().unwrap(), "topic");
        assert_eq!(r.nullable_string().unwrap(), None);
        assert_eq!(r.i32_array().unwrap(), vec![1, 2, 3]);
        assert_eq!(r.uuid().unwrap(), Uuid::from_u128(7));
        assert_eq!(
            r.tagged_fields().unwrap(),
            vec![(0, Bytes::from_static(&[5]))]
        );
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn hostile_lengths_are_errors() {
        // An array claiming 2^28 elements in a 5-byte frame.
        let mut r = WireReader::new(Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x01]));
        assert!(r.array(|r| r.i32()).is_err());
        let mut r = WireReader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
        assert!(r.uvarint().is_err());
        let mut r = WireReader::new(Bytes::from_static(&[10, b'a']));
        assert!(r.string().is_err());
    }
}
