//! Produce v0–v2: advertised (see the module doc of `api`) but refused.
//!
//! These versions carry message formats v0/v1, which this broker does not store. Each
//! partition is answered with UNSUPPORTED_VERSION in the version's own layout, so an old
//! client gets a clear error instead of a dropped connection. acks=0 gets no response.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use tracing::warn;

use super::{RequestError, read_legacy_string};

pub fn handle(
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<Option<BytesMut>, RequestError> {
    let malformed = || RequestError::Close(format!("malformed Produce v{version} request"));
    // Request header v1: api key, version, correlation id, client id.
    frame.advance(8);
    let client_id = read_legacy_string(&mut frame).ok_or_else(malformed)?;
    if frame.remaining() < 10 {
        return Err(malformed());
    }
    let acks = frame.get_i16();
    let _timeout_ms = frame.get_i32();
    let topic_count = frame.get_i32();
    let mut topics = Vec::new();
    for _ in 0..topic_count.max(0) {
        let name = read_legacy_string(&mut frame).ok_or_else(malformed)?;
        if frame.remaining() < 4 {
            return Err(malformed());
        }
        let partition_count = frame.get_i32();
        let mut partitions = Vec::new();
        for _ in 0..partition_count.max(0) {
            if frame.remaining() < 8 {
                return Err(malformed());
            }
            partitions.push(frame.get_i32());
            let size = frame.get_i32().max(0) as usize;
            if frame.remaining() < size {
                return Err(malformed());
            }
            frame.advance(size);
        }
        topics.push((name, partitions));
    }
    warn!(
        client_id,
        version,
        "refusing Produce v{version}: message formats v0/v1 are not supported; upgrade the client"
    );
    if acks == 0 {
        return Ok(None);
    }
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    buf.put_i32(correlation_id);
    buf.put_i32(topics.len() as i32);
    for (name, partitions) in &topics {
        buf.put_i16(name.len() as i16);
        buf.put_slice(name.as_bytes());
        buf.put_i32(partitions.len() as i32);
        for p in partitions {
            buf.put_i32(*p);
            buf.put_i16(ResponseError::UnsupportedVersion.code());
            buf.put_i64(-1); // base offset
            if version >= 2 {
                buf.put_i64(-1); // log append time
            }
        }
    }
    if version >= 1 {
        buf.put_i32(0); // throttle time
    }
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_each_partition_with_unsupported_version() {
        let mut req = BytesMut::new();
        req.put_i16(0); // Produce
        req.put_i16(2);
        req.put_i32(7);
        req.put_i16(3);
        req.put_slice(b"old");
        req.put_i16(1); // acks
        req.put_i32(1000);
        req.put_i32(1);
        req.put_i16(1);
        req.put_slice(b"t");
        req.put_i32(1);
        req.put_i32(0);
        req.put_i32(3);
        req.put_slice(b"abc");
        let mut resp = handle(req.freeze(), 2, 7).unwrap().unwrap().freeze();
        assert_eq!(resp.get_i32() as usize, resp.remaining());
        assert_eq!(resp.get_i32(), 7);
        assert_eq!(resp.get_i32(), 1);
        assert_eq!(resp.get_i16(), 1);
        resp.advance(1);
        assert_eq!(resp.get_i32(), 1);
        assert_eq!(resp.get_i32(), 0);
        assert_eq!(resp.get_i16(), ResponseError::UnsupportedVersion.code());
    }
}
