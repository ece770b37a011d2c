//! `strata-broker --config server.properties [--override key=value ...]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use strata_broker::config::KafkaConfig;
use tokio::sync::watch;
use tracing::{error, info};

/// A Kafka broker speaking the Kafka wire protocol.
#[derive(Parser, Debug)]
#[command(name = "strata-broker", version)]
struct Args {
    /// A Kafka-style server.properties file.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Set a property after reading the file, like `kafka-server-start.sh --override`.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strata-broker: {e}");
            return ExitCode::from(2);
        }
    };
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strata-broker")
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("shutting down");
            let _ = shutdown_tx.send(true);
        });
        match strata_broker::run(config, shutdown_rx).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Every partition holds its active segment's file open, and every client a socket: the
/// soft limit on open files goes up to the hard one, as the JVM does for Kafka
/// (`-XX:+MaxFDLimit`, on by default).
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let from = limit.current;
        limit.current = limit.maximum;
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => info!(from, to = limit.current, "raised the open file limit"),
            Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
        }
    }
}

fn load_config(args: &Args) -> Result<KafkaConfig, String> {
    let mut config = match &args.config {
        Some(path) => KafkaConfig::from_file(path).map_err(|e| e.to_string())?,
        None => KafkaConfig::default(),
    };
    for o in &args.overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("--override expects KEY=VALUE, got '{o}'"))?;
        config.set(k.trim(), v.trim()).map_err(|e| e.to_string())?;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
