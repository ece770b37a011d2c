use anyhow::Context as _;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use strata_operator::kafka::client::ClientConnector;
use strata_operator::metrics::Metrics;
use strata_operator::run::Scope;

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
    },
    /// Print the CustomResourceDefinitions as YAML (or write one file per CRD).
    Crds {
        /// Write `<plural>.strata.dev.yaml` files into this directory instead of stdout.
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { out_dir } => write_crds(out_dir),
        Command::Run {
            namespaces,
            metrics_addr,
            bootstrap_override,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .init();
            tokio::runtime::Runtime::new()?.block_on(run(
                namespaces,
                metrics_addr,
                bootstrap_override,
            ))
        }
    }
}

async fn run(
    namespaces: Vec<String>,
    metrics_addr: std::net::SocketAddr,
    bootstrap_override: Option<String>,
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
    strata_operator::run::run(
        client,
        scope,
        ClientConnector::default(),
        bootstrap_override,
        metrics,
    )
    .await?;
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
