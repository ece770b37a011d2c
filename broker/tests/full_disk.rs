//! A full disk: producers get KAFKA_STORAGE_ERROR, the broker stays up, everything
//! acknowledged before stays readable, and appends work again once space is freed.
//!
//! The log directory is a small tmpfs, so the disk really fills. Mounting needs root,
//! which the test environment (CI and `make test`) has.

mod support;

use std::process::Command;

use kafka_protocol::ResponseError;
use support::BrokerProcess;
use support::wire::{batch, connect, create_topic, fetch_all, produce};

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the full-disk test simulates ENOSPC with it)"
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn full_disk_refuses_appends_and_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let logs = data.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let _mount = Tmpfs::mount(&logs, "4m");
    // Ballast we can delete later to free space, as an operator would.
    let ballast = logs.join("ballast");
    std::fs::write(&ballast, vec![0u8; 1024 * 1024]).unwrap();

    let mut broker = BrokerProcess::start_in(data, &[("log.segment.bytes", "524288")]);
    let mut conn = connect(broker.port);
    assert_eq!(create_topic(&mut conn, "fill", 1).topics[0].error_code, 0);

    let mut acknowledged = Vec::new();
    let mut storage_error = false;
    for i in 0..400 {
        let records = batch(10, 1000);
        let (code, base) = produce(&mut conn, "fill", 0, records.freeze());
        if code == ResponseError::KafkaStorageError.code() {
            storage_error = true;
            break;
        }
        assert_eq!(code, 0, "batch {i}");
        acknowledged.push(base);
    }
    assert!(
        storage_error,
        "the disk filled up and the producer was told KAFKA_STORAGE_ERROR"
    );
    assert!(broker.is_running(), "the broker survives a full disk");
    let acked_records = acknowledged.len() as i64 * 10;

    // Everything acknowledged is still there, and nothing else.
    let records = fetch_all(&mut conn, "fill", 0, 0);
    assert_eq!(records.len() as i64, acked_records);
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, (o, _, _))| *o == i as i64)
    );

    // Another full-disk append fails cleanly, then space comes back and appends resume
    // right after the last acknowledged offset.
    let (code, _) = produce(&mut conn, "fill", 0, batch(10, 1000).freeze());
    assert_eq!(code, ResponseError::KafkaStorageError.code());
    std::fs::remove_file(&ballast).unwrap();
    let (code, base) = produce(&mut conn, "fill", 0, batch(10, 1000).freeze());
    assert_eq!((code, base), (0, acked_records));

    // And it all survives a restart.
    broker.stop();
    broker.restart();
    let mut conn = connect(broker.port);
    assert_eq!(
        fetch_all(&mut conn, "fill", 0, 0).len() as i64,
        acked_records + 10
    );
}
