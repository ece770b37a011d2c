//! Four-letter words on the client port (`ruok`, `srvr`, `stat`, `mntr`, `envi`, `conf`,
//! `cons`, `wchs`, `isro`), answered as plain text, as ZooKeeper does, and only when
//! listed in `4lw.commands.whitelist` (default: `srvr`). Kubernetes probes that use
//! `ruok` and `mntr` need `4lw.commands.whitelist=ruok,mntr,srvr`.

use std::fmt::Write as _;

use crate::server::processor::Processor;

pub const VERSION: &str = concat!("3.9.0-strata-", env!("CARGO_PKG_VERSION"));

/// Whether the first four bytes of a connection are a four-letter word.
pub fn is_four_letter_word(first: &[u8; 4]) -> Option<&'static str> {
    crate::config::ALL_FOUR_LETTER_WORDS
        .iter()
        .copied()
        .find(|w| w.as_bytes() == first)
}

pub fn mode(p: &Processor) -> &'static str {
    p.mode()
}

/// `(name, value)` pairs of `mntr`, also exported as Prometheus gauges.
pub fn mntr_values(p: &Processor) -> Vec<(&'static str, String)> {
    let st = &p.stats;
    let avg = if st.latency_count == 0 {
        0.0
    } else {
        st.latency_total_ms as f64 / st.latency_count as f64
    };
    let (_, _, watches) = p.watched_paths();
    let mut v = vec![
        ("zk_version", VERSION.to_string()),
        ("zk_server_state", mode(p).to_string()),
        ("zk_avg_latency", format!("{avg:.4}")),
        ("zk_max_latency", st.latency_max_ms.to_string()),
        ("zk_min_latency", st.latency_min_ms.to_string()),
        ("zk_packets_received", st.packets_received.to_string()),
        ("zk_packets_sent", st.packets_sent.to_string()),
        ("zk_num_alive_connections", p.connection_count().to_string()),
        ("zk_outstanding_requests", p.outstanding().to_string()),
        ("zk_znode_count", p.tree.node_count().to_string()),
        ("zk_watch_count", watches.to_string()),
        ("zk_ephemerals_count", p.tree.ephemeral_count().to_string()),
        (
            "zk_approximate_data_size",
            p.tree.approximate_data_size().to_string(),
        ),
        ("zk_last_zxid", p.tree.last_zxid.to_string()),
        ("zk_fsync_time_micros", p.fsyncs().0.to_string()),
        ("zk_fsync_count", p.fsyncs().1.to_string()),
        ("zk_snapshot_count", st.snapshots.to_string()),
        (
            "zk_connection_rejected",
            st.connections_rejected.to_string(),
        ),
        (
            "zk_sessionless_connections_expired",
            st.sessionless_expired.to_string(),
        ),
        ("zk_slow_connections_dropped", st.slow_dropped.to_string()),
        ("zk_uptime", p.uptime().as_millis().to_string()),
    ];
    if let Some((synced, total)) = p.synced_followers() {
        v.push(("zk_synced_followers", synced.to_string()));
        v.push(("zk_followers", total.to_string()));
    }
    v
}

pub fn run(p: &Processor, word: &str) -> String {
    let cfg = p.config();
    if !cfg.four_letter_words.contains(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    let mut out = String::new();
    if !p.serving() && matches!(word, "srvr" | "stat" | "cons" | "wchs") {
        return "This ZooKeeper instance is not currently serving requests\n".to_string();
    }
    match word {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str("rw"),
        "srvr" | "stat" => {
            let st = &p.stats;
            let avg = if st.latency_count == 0 {
                0.0
            } else {
                st.latency_total_ms as f64 / st.latency_count as f64
            };
            let _ = writeln!(out, "Zookeeper version: {VERSION}");
            if word == "stat" {
                out.push_str("Clients:\n");
                for line in p.connection_lines() {
                    let _ = writeln!(out, "{line}");
                }
                out.push('\n');
            }
            let _ = writeln!(
                out,
                "Latency min/avg/max: {}/{avg:.4}/{}",
                st.latency_min_ms, st.latency_max_ms
            );
            let _ = writeln!(out, "Received: {}", st.packets_received);
            let _ = writeln!(out, "Sent: {}", st.packets_sent);
            let _ = writeln!(out, "Connections: {}", p.connection_count());
            let _ = writeln!(out, "Outstanding: {}", p.outstanding());
            let _ = writeln!(out, "Zxid: {:#x}", p.tree.last_zxid);
            let _ = writeln!(out, "Mode: {}", mode(p));
            let _ = writeln!(out, "Node count: {}", p.tree.node_count());
        }
        "mntr" => {
            for (k, v) in mntr_values(p) {
                let _ = writeln!(out, "{k}\t{v}");
            }
        }
        "envi" => {
            out.push_str("Environment:\n");
            let _ = writeln!(out, "zookeeper.version={VERSION}");
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
            let _ = writeln!(out, "host.name={host}");
            let _ = writeln!(out, "os.name={}", std::env::consts::OS);
            let _ = writeln!(out, "os.arch={}", std::env::consts::ARCH);
            if let Ok(dir) = std::env::current_dir() {
                let _ = writeln!(out, "user.dir={}", dir.display());
            }
        }
        "conf" => {
            if let Some(port) = cfg.client_port {
                let _ = writeln!(out, "clientPort={port}");
            }
            if let Some(secure) = &cfg.secure_client {
                let _ = writeln!(out, "secureClientPort={}", secure.port);
            }
            if let Some(a) = cfg.client_port_address {
                let _ = writeln!(out, "clientPortAddress={a}");
            }
            let _ = writeln!(out, "dataDir={}", cfg.data_dir.join("version-2").display());
            let _ = writeln!(
                out,
                "dataLogDir={}",
                cfg.data_log_dir.join("version-2").display()
            );
            let _ = writeln!(out, "tickTime={}", cfg.tick_time_ms);
            let _ = writeln!(out, "maxClientCnxns={}", cfg.max_client_cnxns);
            let _ = writeln!(out, "minSessionTimeout={}", cfg.min_session_timeout_ms);
            let _ = writeln!(out, "maxSessionTimeout={}", cfg.max_session_timeout_ms);
            let _ = writeln!(out, "serverId={}", cfg.my_id);
            if !cfg.is_standalone() {
                let _ = writeln!(out, "initLimit={}", cfg.init_limit);
                let _ = writeln!(out, "syncLimit={}", cfg.sync_limit);
                for (id, s) in &cfg.servers {
                    let role = match s.role {
                        crate::config::PeerRole::Participant => "participant",
                        crate::config::PeerRole::Observer => "observer",
                    };
                    let _ = writeln!(
                        out,
                        "server.{id}={}:{}:{}:{role}",
                        s.host, s.quorum_port, s.election_port
                    );
                }
            }
        }
        "cons" => {
            for line in p.connection_lines() {
                let _ = writeln!(out, "{line}");
            }
            out.push('\n');
        }
        "wchs" => {
            let (sessions, paths, total) = p.watched_paths();
            let _ = writeln!(out, "{sessions} connections watching {paths} paths");
            let _ = writeln!(out, "Total watches:{total}");
        }
        _ => {}
    }
    out
}

/// `mntr` as Prometheus text exposition: numeric values as gauges, the server state
/// as a labelled gauge.
pub fn prometheus(p: &Processor) -> String {
    let mut out = String::new();
    for (k, v) in mntr_values(p) {
        if k == "zk_server_state" {
            let _ = writeln!(out, "# TYPE zk_server_state gauge");
            let _ = writeln!(out, "zk_server_state{{state=\"{v}\"}} 1");
        } else if v.parse::<f64>().is_ok() {
            let _ = writeln!(out, "# TYPE {k} gauge");
            let _ = writeln!(out, "{k} {v}");
        }
    }
    out
}
