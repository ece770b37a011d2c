//! `crds/` is what users `kubectl apply` and what the chart ships; it must be exactly what
//! the Rust types generate. Regenerate with `cargo run -p strata-operator -- crds --out-dir crds`.

use std::path::Path;

use kube::CustomResourceExt;
use strata_operator::crd::{ConsumerGroup, KafkaCluster, Topic, crd_files};

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("operator/ sits in the workspace root")
}

#[test]
fn checked_in_crds_match_the_types() {
    for dir in ["crds", "charts/strata/crds"] {
        for (file, yaml) in crd_files().unwrap() {
            let path = repo_root().join(dir).join(file);
            let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; run `cargo run -p strata-operator -- crds --out-dir {dir}`",
                    path.display()
                )
            });
            assert!(
                on_disk == yaml,
                "{} drifted from the Rust types; run `cargo run -p strata-operator -- crds --out-dir {dir}`",
                path.display()
            );
        }
    }
}

#[test]
fn crds_carry_the_scale_subresource_cel_rule_and_short_names() {
    let kc = serde_json::to_value(KafkaCluster::crd()).unwrap();
    let version = &kc["spec"]["versions"][0];
    assert_eq!(
        version["subresources"]["scale"]["specReplicasPath"],
        ".spec.brokers.replicas"
    );
    assert_eq!(
        version["subresources"]["scale"]["statusReplicasPath"],
        ".status.brokers.ready"
    );
    assert!(version["subresources"]["status"].is_object());
    let coordinator =
        &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["coordinator"];
    assert_eq!(
        coordinator["x-kubernetes-validations"][0]["rule"],
        "self.replicas % 2 == 1"
    );
    assert_eq!(coordinator["properties"]["replicas"]["minimum"], 1.0);
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Brokers", "Ready", "Coordinators", "Age"]);
    assert_eq!(kc["spec"]["names"]["shortNames"][0], "kc");
    let short = |crd: serde_json::Value| {
        crd["spec"]["names"]["shortNames"][0]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(short(serde_json::to_value(Topic::crd()).unwrap()), "kt");
    assert_eq!(
        short(serde_json::to_value(ConsumerGroup::crd()).unwrap()),
        "kcg"
    );
}
