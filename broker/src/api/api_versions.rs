//! ApiVersions: the ranges in `SUPPORTED_APIS`, and the KIP-511 fallback.

use bytes::{BufMut, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::{INTER_BROKER_APIS, RequestContext, SUPPORTED_APIS};
use crate::Broker;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .chain(INTER_BROKER_APIS.iter().map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(*key)
                .with_min_version(*min)
                .with_max_version(*max)
        }))
        .collect()
}

pub async fn handle(
    _: &Broker,
    _: &RequestContext<'_>,
    _: ApiVersionsRequest,
) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// The answer to an ApiVersions request at a version we do not know: response header v0
/// and the v0 body layout (error code, then the api key array), so any client can read it.
pub fn unsupported_version_response(correlation_id: i32) -> BytesMut {
    let keys = api_keys();
    let mut buf = BytesMut::with_capacity(16 + keys.len() * 6);
    buf.put_i32(0);
    buf.put_i32(correlation_id);
    buf.put_i16(ResponseError::UnsupportedVersion.code());
    buf.put_i32(keys.len() as i32);
    for k in &keys {
        buf.put_i16(k.api_key);
        buf.put_i16(k.min_version);
        buf.put_i16(k.max_version);
    }
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn fallback_is_a_v0_response_listing_our_ranges() {
        let buf = unsupported_version_response(42);
        let mut body = buf.freeze().slice(8..);
        let decoded = ApiVersionsResponse::decode(&mut body, 0).unwrap();
        assert_eq!(decoded.error_code, ResponseError::UnsupportedVersion.code());
        assert_eq!(
            decoded.api_keys.len(),
            SUPPORTED_APIS.len() + INTER_BROKER_APIS.len()
        );
        let produce = decoded.api_keys.iter().find(|k| k.api_key == 0).unwrap();
        assert_eq!((produce.min_version, produce.max_version), (0, 11));
    }
}
