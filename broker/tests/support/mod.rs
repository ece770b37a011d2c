//! Starts real `strata-broker` processes for integration tests: each gets its own data
//! directory and a free port, and is stopped (or killed) like a real deployment would be.

#![allow(dead_code)]

#[path = "../../../tests/ports.rs"]
mod ports;
#[path = "../../../tests/wait.rs"]
pub mod wait;

pub use ports::free_port;
pub mod wire;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct BrokerProcess {
    child: Option<Child>,
    data: tempfile::TempDir,
    pub port: u16,
    extra: Vec<(String, String)>,
}

impl BrokerProcess {
    /// Starts a broker with `extra` properties on top of a test configuration.
    pub fn start(extra: &[(&str, &str)]) -> BrokerProcess {
        let data = tempfile::tempdir().expect("temp dir");
        Self::start_in(data, extra)
    }

    pub fn start_in(data: tempfile::TempDir, extra: &[(&str, &str)]) -> BrokerProcess {
        let mut broker = BrokerProcess {
            child: None,
            data,
            port: free_port(),
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        broker.spawn();
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data.path().join("logs")
    }

    pub fn data_path(&self) -> &Path {
        self.data.path()
    }

    fn write_config(&self) -> PathBuf {
        let mut props = format!(
            "broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={logs}\nmetrics.port=0\n\
             group.initial.rebalance.delay.ms=0\n",
            port = self.port,
            logs = self.log_dir().display()
        );
        for (k, v) in &self.extra {
            props.push_str(&format!("{k}={v}\n"));
        }
        let path = self.data.path().join("server.properties");
        std::fs::write(&path, props).unwrap();
        path
    }

    fn spawn(&mut self) {
        let config = self.write_config();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.path().join("broker.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_strata-broker"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start strata-broker");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "broker exited with {status} during start-up:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("broker did not start listening within 60s:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.data.path().join("broker.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// SIGTERM and wait: a clean shutdown.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.signal_child(&child, "TERM");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("broker did not stop within 30s of SIGTERM");
        }
    }

    fn signal_child(&self, child: &Child, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status();
    }

    /// SIGKILL: a crash. Nothing is flushed, no clean-shutdown marker is written.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the broker first");
        self.spawn();
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- broker log ---\n{}", self.log());
        }
        self.kill();
    }
}

/// `GET /metrics` from a broker's metrics port: the whole HTTP response, or why not.
pub fn scrape(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut body = String::new();
    s.read_to_string(&mut body)
        .map_err(|e| format!("read: {e}"))?;
    if body.starts_with("HTTP/1.1 200 OK") {
        Ok(body)
    } else {
        Err(body)
    }
}

/// The value of an unlabelled sample in `/metrics`.
pub fn metric(port: u16, name: &str) -> Result<u64, String> {
    let body = scrape(port)?;
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("{name} not in /metrics"))
}

/// Runs the broker on a `server.properties` of `text` and expects it to refuse to start;
/// returns what it printed on stderr.
pub fn refused_config(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.properties");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata-broker"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the broker started with:\n{text}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
