//! API version negotiation.
//!
//! A broker advertises, in its ApiVersions response, the range of versions it speaks
//! for every API. For each request the client uses the highest version both sides
//! speak: the intersection of the broker's range and the range `kafka-protocol` can
//! encode (`Message::VERSIONS`).

use std::collections::HashMap;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::protocol::VersionRange;

/// What one broker speaks, learned from its ApiVersions response.
#[derive(Debug, Clone, Default)]
pub struct ApiVersions {
    /// Broker's advertised `min..max` per API key.
    ranges: HashMap<i16, VersionRange>,
}

impl ApiVersions {
    /// Builds the table from the `api_keys` of an ApiVersions response.
    pub fn from_response(api_keys: &[ApiVersion]) -> Self {
        let ranges = api_keys
            .iter()
            .map(|v| {
                (
                    v.api_key,
                    VersionRange {
                        min: v.min_version,
                        max: v.max_version,
                    },
                )
            })
            .collect();
        ApiVersions { ranges }
    }

    /// The broker's range for `api`, if it speaks it at all.
    pub fn broker_range(&self, api: ApiKey) -> Option<VersionRange> {
        self.ranges.get(&(api as i16)).copied()
    }

    /// The highest version of `api` that both the broker and `ours` speak.
    pub fn negotiate(&self, api: ApiKey, ours: VersionRange) -> Option<i16> {
        let common = self.broker_range(api)?.intersect(&ours);
        (!common.is_empty()).then_some(common.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{FetchRequest, MetadataRequest, ProduceRequest};
    use kafka_protocol::protocol::Message;

    fn api(key: ApiKey, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    }

    #[test]
    fn picks_the_highest_common_version() {
        let broker = ApiVersions::from_response(&[
            api(ApiKey::Metadata, 0, 9),
            api(ApiKey::Produce, 0, 99),
            api(ApiKey::Fetch, 0, 3),
        ]);
        // Broker is older than us: its max wins.
        assert_eq!(
            broker.negotiate(ApiKey::Metadata, MetadataRequest::VERSIONS),
            Some(9)
        );
        // Broker is newer than us: our max wins.
        assert_eq!(
            broker.negotiate(ApiKey::Produce, ProduceRequest::VERSIONS),
            Some(ProduceRequest::VERSIONS.max)
        );
        // No overlap (we start at Fetch v4).
        assert_eq!(
            broker.negotiate(ApiKey::Fetch, FetchRequest::VERSIONS),
            None
        );
        // Not advertised at all.
        assert_eq!(
            broker.negotiate(ApiKey::CreateTopics, VersionRange { min: 0, max: 7 }),
            None
        );
    }
}
