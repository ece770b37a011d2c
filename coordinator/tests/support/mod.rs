//! Start real `strata-coordinator` processes for tests: one standalone server, or an
//! ensemble with server N on 127.0.0.N, each with its own data directory.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../../tests/ports.rs"]
mod ports;
#[path = "../../../tests/wait.rs"]
pub mod wait;

pub use ports::free_port;

pub struct Server {
    pub id: usize,
    pub host: String,
    pub client_port: u16,
    pub cfg_path: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
    starts: usize,
}

impl Server {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.client_port)
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_strata-coordinator"))
            .arg("--config")
            .arg(&self.cfg_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start strata-coordinator");
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The process's peak resident set (VmHWM) so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmHWM")
    }
}

/// One server for [`Ensemble::launch`]: where clients reach it and its own zoo.cfg lines.
struct Member {
    host: String,
    client_port: u16,
    cfg: String,
}

pub struct Ensemble {
    pub servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl Ensemble {
    /// One standalone server.
    pub fn standalone(extra: &str) -> Ensemble {
        Ensemble::start(0, extra)
    }

    /// `n` participants on 127.0.0.1..=127.0.0.n; `n == 0` means one standalone server.
    pub fn start(n: usize, extra: &str) -> Ensemble {
        Ensemble::start_with_observers(n, 0, extra)
    }

    /// `n` participants, then `observers` observers on the following addresses.
    pub fn start_with_observers(n: usize, observers: usize, extra: &str) -> Ensemble {
        let client_port = free_port();
        let quorum_port = free_port();
        let election_port = free_port();
        let count = (n + observers).max(1);
        let mut server_lines = String::new();
        if n > 0 {
            for i in 1..=n + observers {
                let role = if i > n { ":observer" } else { "" };
                server_lines.push_str(&format!(
                    "server.{i}=127.0.0.{i}:{quorum_port}:{election_port}{role}\n"
                ));
            }
        }
        let members = (1..=count)
            .map(|i| Member {
                host: format!("127.0.0.{i}"),
                client_port,
                cfg: format!(
                    "clientPortAddress=127.0.0.{i}\nmetricsProvider.httpPort=0\n{extra}\n{server_lines}"
                ),
            })
            .collect();
        Ensemble::launch(members)
    }

    /// `n` participants as ZooKeeper's guide runs several servers on one machine: one
    /// address (127.0.0.1), a client, quorum and election port of their own each, and
    /// nothing else but `extra` (no metrics keys).
    pub fn one_host(n: usize, extra: &str) -> Ensemble {
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let server_lines: String = ports
            .iter()
            .enumerate()
            .map(|(i, (_, q, e))| format!("server.{}=127.0.0.1:{q}:{e}\n", i + 1))
            .collect();
        let members = ports
            .iter()
            .map(|(client_port, _, _)| Member {
                host: "127.0.0.1".into(),
                client_port: *client_port,
                cfg: format!("clientPortAddress=127.0.0.1\n{extra}\n{server_lines}"),
            })
            .collect();
        Ensemble::launch(members)
    }

    /// Start server N (from 1) of `members` with its own data directory, `myid` and
    /// zoo.cfg (common settings, then the member's lines), and wait until all serve.
    fn launch(members: Vec<Member>) -> Ensemble {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut servers = Vec::new();
        for (i, m) in members.into_iter().enumerate() {
            let id = i + 1;
            let data = dir.path().join(format!("s{id}"));
            std::fs::create_dir_all(&data).expect("data dir");
            std::fs::write(data.join("myid"), format!("{id}\n")).expect("myid");
            let cfg = format!(
                "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                 4lw.commands.whitelist=*\n{}",
                data.display(),
                m.client_port,
                m.cfg
            );
            let cfg_path = dir.path().join(format!("zoo{id}.cfg"));
            std::fs::write(&cfg_path, cfg).expect("zoo.cfg");
            servers.push(Server {
                id,
                host: m.host,
                client_port: m.client_port,
                cfg_path,
                log_path: dir.path().join(format!("s{id}.log")),
                child: None,
                starts: 0,
            });
        }
        for s in &mut servers {
            s.spawn();
        }
        let e = Ensemble { servers, _dir: dir };
        for i in 0..e.servers.len() {
            e.wait_serving(i, Duration::from_secs(30));
        }
        e
    }

    /// Whether server `i`'s process is still running.
    pub fn running(&mut self, i: usize) -> bool {
        self.servers[i]
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn connect_string(&self) -> String {
        self.servers
            .iter()
            .map(Server::addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A four-letter word against server `i` (0-based).
    pub fn four_letter(&self, i: usize, word: &str) -> String {
        let Ok(mut s) = TcpStream::connect(self.servers[i].addr()) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(word.as_bytes());
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    pub fn mode(&self, i: usize) -> Option<String> {
        self.four_letter(i, "srvr")
            .lines()
            .find_map(|l| l.strip_prefix("Mode: ").map(str::to_string))
    }

    pub fn wait_serving(&self, i: usize, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.mode(i).is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "server {} not serving after {limit:?}; log:\n{}",
            i + 1,
            self.servers[i].log()
        );
    }

    pub fn leader(&self) -> Option<usize> {
        (0..self.servers.len()).find(|i| self.mode(*i).as_deref() == Some("leader"))
    }

    /// The leader, once one of the servers says it leads.
    pub fn wait_leader(&self) -> usize {
        wait::eventually("a server to lead", || {
            self.leader().ok_or_else(|| {
                let modes: Vec<_> = (0..self.servers.len()).map(|i| self.mode(i)).collect();
                format!("modes {modes:?}")
            })
        })
    }

    /// SIGKILL server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP server `i`: it keeps its sockets but answers nothing, like a server
    /// behind a cut link. The kernel still completes TCP handshakes to it.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, "-STOP");
    }

    pub fn resume(&mut self, i: usize) {
        self.signal(i, "-CONT");
    }

    fn signal(&mut self, i: usize, sig: &str) {
        let pid = self.servers[i].child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig} {pid}");
    }

    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.servers[i].spawn();
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
