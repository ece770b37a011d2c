//! `strata-operator rack`, the init container of a broker pod in a cluster with
//! `spec.brokers.rack`: the value of its node's topology label becomes the broker's
//! `broker.rack` (see `resources::rack` for why this is an init container).

use k8s_openapi::api::core::v1::Node;
use kube::Api;

#[derive(Debug, thiserror::Error)]
pub enum RackError {
    #[error("reading node {node}: {source}")]
    Api {
        node: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "node {node} has no label {key}; every node brokers may run on needs it (or spec.brokers.rack.topologyKey must name a label they all have)"
    )]
    MissingLabel { node: String, key: String },
}

/// Pure: the node's value for `key`. A rack must be named: an empty value is as good as
/// none, since brokers with and without racks cannot be placed rack-aware together.
pub fn rack_of(node: &Node, key: &str) -> Result<String, RackError> {
    node.metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(key))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| RackError::MissingLabel {
            node: node.metadata.name.clone().unwrap_or_default(),
            key: key.to_string(),
        })
}

pub async fn node_label(client: kube::Client, node: &str, key: &str) -> Result<String, RackError> {
    let found = Api::<Node>::all(client)
        .get(node)
        .await
        .map_err(|source| RackError::Api {
            node: node.to_string(),
            source: Box::new(source),
        })?;
    rack_of(&found, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(labels: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("worker-1".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Node::default()
        }
    }

    #[test]
    fn the_rack_is_the_label_value() {
        let n = node(&[("topology.kubernetes.io/zone", "eu-west-1b")]);
        assert_eq!(
            rack_of(&n, "topology.kubernetes.io/zone").unwrap(),
            "eu-west-1b"
        );
    }

    #[test]
    fn a_missing_or_empty_label_is_an_error_naming_node_and_key() {
        for n in [node(&[]), node(&[("topology.kubernetes.io/zone", " ")])] {
            let e = rack_of(&n, "topology.kubernetes.io/zone")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("worker-1") && e.contains("topology.kubernetes.io/zone"),
                "{e}"
            );
        }
    }
}
