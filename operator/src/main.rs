use anyhow::Context as _;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use strata_operator::kafka::client::ClientConnector;
use strata_operator::metrics::Metrics;
use strata_operator::probe;
use strata_operator::run::{Scope, Settings};

#[derive(Parser)]
#[command(name = "strata-operator", about = "Runs Strata clusters on Kubernetes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the KafkaCluster, Topic and ConsumerGroup controllers.
    Run {
        /// Watch only this namespace (repeatable); every namespace when absent.
        #[arg(
            long = "namespace",
            env = "STRATA_WATCH_NAMESPACES",
            value_delimiter = ','
        )]
        namespaces: Vec<String>,
        /// Address of `/metrics`, `/healthz` and `/readyz`.
        #[arg(long, default_value = "0.0.0.0:8080")]
        metrics_addr: std::net::SocketAddr,
        /// Reach every cluster's brokers at these bootstrap servers instead of the cluster's
        /// bootstrap Service: for an operator running outside the cluster network.
        #[arg(long, env = "STRATA_BOOTSTRAP_OVERRIDE")]
        bootstrap_override: Option<String>,
        /// The ClusterRole (granting `get` on nodes) bound to the brokers of clusters that
        /// set `spec.brokers.rack`; the chart creates it as `<release>-broker`.
        #[arg(
            long,
            env = "STRATA_BROKER_CLUSTER_ROLE",
            default_value = "strata-broker"
        )]
        broker_cluster_role: String,
        /// How long a rolling restart waits for a restarted broker to be Ready and back in
        /// every ISR before it stops and says so in the cluster's Degraded condition.
        #[arg(long, env = "STRATA_ROLL_READY_TIMEOUT_SECONDS", default_value_t = 600)]
        roll_ready_timeout_seconds: u64,
    },
    /// Readiness check run inside a broker or coordinator pod: exits 0 when it serves.
    Probe {
        #[command(subcommand)]
        role: ProbeRole,
    },
    /// Init container of a broker pod: write its node's topology label (the broker's
    /// rack) to a file.
    Rack {
        /// The pod's node (`spec.nodeName` through the downward API).
        #[arg(long)]
        node: String,
        /// The node label naming the failure domain.
        #[arg(long)]
        topology_key: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Print the CustomResourceDefinitions as YAML (or write one file per CRD).
    Crds {
        /// Write `<plural>.strata.dev.yaml` files into this directory instead of stdout.
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProbeRole {
    /// The controller has described the cluster to the broker (`strata_broker_ready 1` on
    /// its metrics endpoint) and its Kafka port accepts connections.
    Broker {
        #[arg(long, default_value_t = 9404)]
        metrics_port: u16,
        #[arg(long, default_value_t = 9092)]
        kafka_port: u16,
    },
    /// The coordinator is in the quorum: `srvr` on its client port reports a mode.
    Coordinator {
        #[arg(long, default_value_t = 2181)]
        client_port: u16,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { out_dir } => write_crds(out_dir),
        Command::Probe { role } => {
            let verdict = match role {
                ProbeRole::Broker {
                    metrics_port,
                    kafka_port,
                } => probe::broker(metrics_port, kafka_port),
                ProbeRole::Coordinator { client_port } => probe::coordinator(client_port),
            };
            // The kubelet keeps the last lines of a failed probe's output in the pod's
            // events: say why.
            match verdict {
                Ok(serving) => {
                    println!("{serving}");
                    Ok(())
                }
                Err(not_yet) => {
                    println!("{not_yet}");
                    std::process::exit(1);
                }
            }
        }
        Command::Rack {
            node,
            topology_key,
            out,
        } => tokio::runtime::Runtime::new()?.block_on(async {
            let client = kube::Client::try_default()
                .await
                .context("connecting to the Kubernetes API")?;
            let rack = strata_operator::rack::node_label(client, &node, &topology_key).await?;
            std::fs::write(&out, &rack).with_context(|| format!("writing {}", out.display()))?;
            println!("node {node}: {topology_key}={rack}");
            Ok(())
        }),
        Command::Run {
            namespaces,
            metrics_addr,
            bootstrap_override,
            broker_cluster_role,
            roll_ready_timeout_seconds,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .init();
            let settings = Settings {
                bootstrap_override,
                broker_cluster_role,
                roll_timeouts: strata_operator::roller::Timeouts {
                    ready: std::time::Duration::from_secs(roll_ready_timeout_seconds),
                    ..Default::default()
                },
            };
            tokio::runtime::Runtime::new()?.block_on(run(namespaces, metrics_addr, settings))
        }
    }
}

async fn run(
    namespaces: Vec<String>,
    metrics_addr: std::net::SocketAddr,
    settings: Settings,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .with_context(|| format!("binding the metrics address {metrics_addr}"))?;
    tracing::info!(%metrics_addr, "serving /metrics, /healthz and /readyz");
    tokio::spawn(strata_operator::metrics::serve(listener, metrics.clone()));
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let scope = if namespaces.is_empty() {
        Scope::Cluster
    } else {
        Scope::Namespaces(namespaces)
    };
    strata_operator::run::run(client, scope, ClientConnector::default(), settings, metrics).await?;
    Ok(())
}

fn write_crds(out_dir: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    match out_dir {
        None => print!("{}", strata_operator::crd::crds_yaml()?),
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for (file, yaml) in strata_operator::crd::crd_files()? {
                let path = dir.join(file);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(())
}
