//! `strata-coordinator --config zoo.cfg`: a ZooKeeper server.

use std::path::PathBuf;

use clap::Parser;
use strata_coordinator::config::Config;

#[derive(Parser)]
#[command(
    version,
    about = "A ZooKeeper server speaking ZooKeeper's client protocol"
)]
struct Args {
    /// Path to zoo.cfg (ZooKeeper's format and keys).
    #[arg(long, short)]
    config: PathBuf,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strata-coordinator: {e}");
            std::process::exit(2);
        }
    };
    let serve = strata_coordinator::server::run(cfg);
    // SIGTERM and Ctrl-C end the process at once, as they end a ZooKeeper server: every
    // acknowledged write is already in the transaction log. Handled rather than left to
    // the default action because as PID 1 (in a container) an unhandled SIGTERM is
    // ignored.
    let result = tokio::select! {
        result = serve => result,
        signal = terminated() => {
            tracing::info!(signal, "shutting down");
            Ok(())
        }
    };
    if let Err(e) = result {
        // The chain of contexts names what failed (which port, which file); a backtrace
        // adds nothing for an operator.
        eprintln!("strata-coordinator: {e:#}");
        std::process::exit(1);
    }
}

/// Waits for SIGTERM or SIGINT; returns its name.
async fn terminated() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
