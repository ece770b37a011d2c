//! Checks on a `KafkaCluster` spec that the CRD schema cannot express (or that a cluster
//! created before a schema rule existed may still violate). Pure: the controller turns the
//! result into a `Degraded` condition with reason `InvalidSpec` and builds nothing.

use crate::crd::KafkaClusterSpec;

/// Broker properties the operator writes itself; letting `spec.brokers.config` set them
/// would silently break broker identity or addressing.
pub const RESERVED_BROKER_KEYS: &[&str] = &[
    "broker.id",
    "listeners",
    "advertised.listeners",
    "log.dirs",
    "zookeeper.connect",
    "metrics.port",
    "broker.rack",
];

/// Every problem with the spec, each a sentence that names the field and what to do.
pub fn validate_cluster(spec: &KafkaClusterSpec) -> Vec<String> {
    let mut problems = Vec::new();
    if spec.image.trim().is_empty() {
        problems.push("spec.image must name the Strata image".to_string());
    }
    if spec.brokers.replicas < 1 {
        problems.push(format!(
            "spec.brokers.replicas is {}; a cluster needs at least 1 broker",
            spec.brokers.replicas
        ));
    }
    let voters = spec.coordinator.replicas;
    if voters < 1 || voters % 2 == 0 {
        problems.push(format!(
            "spec.coordinator.replicas is {voters}; it must be odd (1, 3, 5, ...) so a quorum survives losing a minority"
        ));
    }
    if spec.coordinator.observers < 0 {
        problems.push(format!(
            "spec.coordinator.observers is {}; it cannot be negative",
            spec.coordinator.observers
        ));
    }
    for (what, size) in [
        ("spec.brokers.storage.size", &spec.brokers.storage.size),
        (
            "spec.coordinator.storage.size",
            &spec.coordinator.storage.size,
        ),
    ] {
        if !is_quantity(size) {
            problems.push(format!(
                "{what} is '{size}'; expected a Kubernetes quantity such as 10Gi"
            ));
        }
    }
    for key in spec.brokers.config.keys() {
        if RESERVED_BROKER_KEYS.contains(&key.as_str()) {
            problems.push(format!(
                "spec.brokers.config sets '{key}', which the operator derives for each broker; remove it"
            ));
        }
    }
    let plain = spec.listeners.plain.port;
    if let Some(tls) = &spec.listeners.tls
        && tls.port == plain
    {
        problems.push(format!(
            "spec.listeners.tls.port and spec.listeners.plain.port are both {plain}; they must differ"
        ));
    }
    for port in std::iter::once(plain).chain(spec.listeners.tls.as_ref().map(|t| t.port)) {
        if crate::resources::RESERVED_BROKER_PORTS.contains(&port) {
            problems.push(format!(
                "listener port {port} collides with the broker's metrics port; pick another"
            ));
        }
    }
    problems
}

/// A Kubernetes quantity: a decimal number with an optional binary or decimal suffix.
fn is_quantity(s: &str) -> bool {
    quantity_value(s).is_some()
}

/// The value of a Kubernetes quantity (`10Gi` → 10·2³⁰, `500M` → 5·10⁸, `100m` → 0.1), or
/// `None` when it is not one.
pub fn quantity_value(s: &str) -> Option<f64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("", 1.0),
    ];
    SUFFIXES.iter().find_map(|(suffix, factor)| {
        let number = s.strip_suffix(suffix)?;
        let valid = !number.is_empty()
            && number.chars().all(|c| c.is_ascii_digit() || c == '.')
            && number.chars().filter(|&c| c == '.').count() <= 1
            && number.chars().any(|c| c.is_ascii_digit());
        valid
            .then(|| number.parse::<f64>().ok())
            .flatten()
            .map(|n| n * factor)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::tests::sample_spec;

    #[test]
    fn a_good_spec_has_no_problems() {
        assert_eq!(validate_cluster(&sample_spec()), Vec::<String>::new());
    }

    #[test]
    fn even_coordinator_count_is_refused_with_the_field_named() {
        let mut spec = sample_spec();
        spec.coordinator.replicas = 2;
        let problems = validate_cluster(&spec);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("spec.coordinator.replicas is 2"),
            "{problems:?}"
        );
    }

    #[test]
    fn reserved_broker_keys_and_bad_sizes_are_refused() {
        let mut spec = sample_spec();
        spec.brokers.config.insert("broker.id".into(), "7".into());
        spec.brokers
            .config
            .insert("retention.ms".into(), "1000".into());
        spec.brokers.storage.size = "ten gigs".into();
        let problems = validate_cluster(&spec);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("'broker.id'")));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("spec.brokers.storage.size"))
        );
    }

    #[test]
    fn quantities() {
        for ok in ["1Gi", "500M", "10", "1.5Gi", "100m"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "1.2.3Gi", "ten", "-1Gi", "1 Gi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
        assert_eq!(quantity_value("1Gi"), quantity_value("1024Mi"));
        assert_eq!(quantity_value("1.5Gi"), Some(1.5 * 1_073_741_824.0));
        assert_eq!(quantity_value("500M"), Some(5e8));
        assert!(quantity_value("1G") < quantity_value("1Gi"));
    }

    #[test]
    fn listener_ports_must_not_collide() {
        let mut spec = sample_spec();
        spec.listeners.plain.port = 9404;
        assert_eq!(validate_cluster(&spec).len(), 1);
    }

    #[test]
    fn a_tls_listener_is_accepted_on_its_own_port() {
        let mut spec = sample_spec();
        spec.listeners.tls = Some(crate::crd::TlsListener {
            port: 9093,
            secret_name: "events-tls".into(),
        });
        assert_eq!(validate_cluster(&spec), Vec::<String>::new());
        spec.listeners.tls.as_mut().unwrap().port = spec.listeners.plain.port;
        let problems = validate_cluster(&spec);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("spec.listeners.tls.port"),
            "{problems:?}"
        );
    }
}
