//! Load generator for `bench/zk/run.sh`: closed-loop clients issuing create, setData or
//! getData with fixed-size values against any ZooKeeper ensemble, reporting ops/s and
//! latency percentiles; and a failover probe that measures how long writes stop after
//! the leader dies.

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use strata_coordinator::client::Client;
use strata_coordinator::proto::Acl;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one workload at several client counts; prints markdown table rows.
    Load {
        /// Comma-separated `host:port` list; client i uses server i mod n.
        #[arg(long)]
        servers: String,
        /// create | set | get
        #[arg(long)]
        op: String,
        /// Client counts to run, e.g. `1,16,64`.
        #[arg(long, default_value = "1,16,64")]
        clients: String,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 1024)]
        value_bytes: usize,
        /// Label for the first column (the system under test).
        #[arg(long)]
        label: String,
    },
    /// Retry a write against `servers` until one succeeds; print the milliseconds since
    /// `--since-ms` (Unix ms, when the leader was killed).
    Probe {
        #[arg(long)]
        servers: String,
        #[arg(long)]
        since_ms: u64,
    },
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

async fn client_loop(
    server: String,
    id: usize,
    op: String,
    value: Vec<u8>,
    until: Instant,
) -> anyhow::Result<(u64, Vec<u32>)> {
    let c = Client::connect(&server, 30_000).await?;
    let own = format!("/bench/s{id}");
    if c.exists(&own).await?.is_none() {
        c.create(&own, &value, &Acl::world_anyone(), 0).await?;
    }
    let mut lat = Vec::new();
    let mut n = 0u64;
    while Instant::now() < until {
        let t = Instant::now();
        match op.as_str() {
            "create" => {
                c.create(
                    &format!("/bench/c{id}-{n}"),
                    &value,
                    &Acl::world_anyone(),
                    0,
                )
                .await?;
            }
            "set" => {
                c.set(&own, &value, -1).await?;
            }
            "get" => {
                c.get(&own).await?;
            }
            other => anyhow::bail!("unknown op {other}"),
        }
        lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        n += 1;
    }
    c.close().await.ok();
    Ok((n, lat))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().cmd {
        Cmd::Load {
            servers,
            op,
            clients,
            seconds,
            value_bytes,
            label,
        } => {
            let list: Vec<String> = servers.split(',').map(str::to_string).collect();
            let setup = Client::connect(&list[0], 30_000).await?;
            if setup.exists("/bench").await?.is_none() {
                setup.create("/bench", b"", &Acl::world_anyone(), 0).await?;
            }
            setup.close().await.ok();
            for count in clients.split(',').map(|c| c.trim().parse::<usize>()) {
                let count = count?;
                let until = Instant::now() + Duration::from_secs(seconds);
                let started = Instant::now();
                let mut tasks = Vec::new();
                for i in 0..count {
                    let server = list[i % list.len()].clone();
                    // Distinct node names per run so creates never collide.
                    let id = i + count * 100_000 + (unix_ms() % 100_000) as usize * 1000;
                    tasks.push(tokio::spawn(client_loop(
                        server,
                        id,
                        op.clone(),
                        vec![b'x'; value_bytes],
                        until,
                    )));
                }
                let mut total = 0;
                let mut lat = Vec::new();
                for t in tasks {
                    let (n, l) = t.await??;
                    total += n;
                    lat.extend(l);
                }
                let secs = started.elapsed().as_secs_f64();
                lat.sort_unstable();
                println!(
                    "| {label} | {op} | {count} | {:.0} | {:.2} | {:.2} |",
                    total as f64 / secs,
                    percentile(&lat, 0.50),
                    percentile(&lat, 0.99)
                );
            }
        }
        Cmd::Probe { servers, since_ms } => {
            let list: Vec<String> = servers.split(',').map(str::to_string).collect();
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut i = 0;
            loop {
                anyhow::ensure!(Instant::now() < deadline, "no write succeeded in 120 s");
                let server = &list[i % list.len()];
                i += 1;
                let attempt = async {
                    let c = Client::connect(server, 10_000).await?;
                    let r = c.set("/bench", b"probe", -1).await;
                    c.close().await.ok();
                    r.map(|_| ())
                };
                match tokio::time::timeout(Duration::from_secs(2), attempt).await {
                    Ok(Ok(())) => {
                        println!("{}", unix_ms().saturating_sub(since_ms));
                        return Ok(());
                    }
                    _ => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
    }
    Ok(())
}
