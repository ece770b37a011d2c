//! Shared set-up for tests against a live broker.

#![allow(dead_code)]

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use strata_client::ClientConfig;

#[path = "../../../tests/wait.rs"]
pub mod wait;

/// The broker under test from `STRATA_TEST_BOOTSTRAP`, or `None` after printing why the
/// test does nothing.
pub fn bootstrap() -> Option<ClientConfig> {
    match std::env::var("STRATA_TEST_BOOTSTRAP") {
        Ok(addr) if !addr.is_empty() => Some(ClientConfig::new(&addr)),
        _ => {
            // Straight to stderr, past the test harness's capture, so the skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "skipping: set STRATA_TEST_BOOTSTRAP=host:port to run against a broker"
            );
            None
        }
    }
}

/// A topic name no other run uses.
pub fn unique_topic(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}
