//! Dynamic broker configs: what IncrementalAlterConfigs sets on a BROKER resource and
//! Kafka keeps in `/config/brokers/<id>` (one broker) and `/config/brokers/<default>`
//! (every broker), each change announced through `/config/changes`.
//!
//! Strata applies the replication throttle rates (KIP-73). The third key of Kafka's
//! reassignment throttles, `replica.alter.log.dirs.io.max.bytes.per.second`, limits
//! moves between a broker's own log dirs, which Strata does not do: it can be removed
//! (the reassignment tool clears it with the others) but not set.

use std::collections::BTreeMap;

/// The entity name of the cluster-wide default, as Kafka names the znode.
pub const DEFAULT_ENTITY: &str = "<default>";

pub const LEADER_THROTTLED_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_THROTTLED_RATE: &str = "follower.replication.throttled.rate";
pub const ALTER_LOG_DIRS_RATE: &str = "replica.alter.log.dirs.io.max.bytes.per.second";

/// The keys a BROKER resource accepts, in the order DescribeConfigs lists them.
pub const DYNAMIC_BROKER_KEYS: &[&str] = &[
    FOLLOWER_THROTTLED_RATE,
    LEADER_THROTTLED_RATE,
    ALTER_LOG_DIRS_RATE,
];

/// Why a dynamic broker config cannot be set to `value`; Kafka's wording where it has one.
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    match key {
        LEADER_THROTTLED_RATE | FOLLOWER_THROTTLED_RATE => match value.trim().parse::<i64>() {
            Ok(v) if v >= 0 => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for configuration {key}: must be a whole number of bytes per second, at least 0"
            )),
        },
        ALTER_LOG_DIRS_RATE => Err(format!(
            "{key} cannot be set: Strata does not move replicas between the log dirs of a broker"
        )),
        _ => Err(format!(
            "Cannot update these configs dynamically: Set({key})"
        )),
    }
}

/// Where an effective dynamic value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicSource {
    /// `/config/brokers/<id>`.
    Broker,
    /// `/config/brokers/<default>`.
    ClusterDefault,
}

/// A broker's dynamic configs: its own overrides and the cluster-wide defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicBrokerConfigs {
    pub broker: BTreeMap<String, String>,
    pub cluster_default: BTreeMap<String, String>,
}

impl DynamicBrokerConfigs {
    /// The value in force for `key`: the broker's own, else the cluster default.
    pub fn get(&self, key: &str) -> Option<(&str, DynamicSource)> {
        self.broker
            .get(key)
            .map(|v| (v.as_str(), DynamicSource::Broker))
            .or_else(|| {
                self.cluster_default
                    .get(key)
                    .map(|v| (v.as_str(), DynamicSource::ClusterDefault))
            })
    }

    /// A throttle rate in bytes per second; `None` is unthrottled (unset, or a stored value
    /// that does not parse).
    pub fn rate(&self, key: &str) -> Option<u64> {
        self.get(key)
            .and_then(|(v, _)| v.trim().parse::<i64>().ok())
            .and_then(|v| u64::try_from(v).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_throttle_rates_can_be_set() {
        assert!(validate(LEADER_THROTTLED_RATE, "1000000").is_ok());
        assert!(validate(FOLLOWER_THROTTLED_RATE, "0").is_ok());
        assert!(validate(FOLLOWER_THROTTLED_RATE, "-1").is_err());
        assert!(validate(LEADER_THROTTLED_RATE, "fast").is_err());
        assert!(validate(ALTER_LOG_DIRS_RATE, "100").is_err());
        let e = validate("log.retention.ms", "1").unwrap_err();
        assert_eq!(
            e,
            "Cannot update these configs dynamically: Set(log.retention.ms)"
        );
    }

    #[test]
    fn a_brokers_own_value_wins_over_the_cluster_default() {
        let mut configs = DynamicBrokerConfigs::default();
        assert_eq!(configs.rate(LEADER_THROTTLED_RATE), None);
        configs
            .cluster_default
            .insert(LEADER_THROTTLED_RATE.into(), "500".into());
        assert_eq!(configs.rate(LEADER_THROTTLED_RATE), Some(500));
        assert_eq!(
            configs.get(LEADER_THROTTLED_RATE),
            Some(("500", DynamicSource::ClusterDefault))
        );
        configs
            .broker
            .insert(LEADER_THROTTLED_RATE.into(), "100".into());
        assert_eq!(configs.rate(LEADER_THROTTLED_RATE), Some(100));
        assert_eq!(configs.rate(FOLLOWER_THROTTLED_RATE), None);
    }
}
