//! `strata`: the command line for people. Kafka's scripts in one binary:
//! `strata topics` is `kafka-topics.sh`, `strata produce` the console producer,
//! `strata consume` the console consumer, `strata groups` is
//! `kafka-consumer-groups.sh`.
//!
//! One module per subcommand group; each has a clap `Args`/`Command` type and an async
//! `run`. `main` only parses, connects the dots and turns errors into one line on
//! stderr and exit code 1.

mod consume;
mod groups;
mod output;
mod produce;
mod time;
mod topics;
mod zk;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use strata_client::ClientConfig;

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Strata command line: topics, console producer and consumer, consumer groups"
)]
struct Cli {
    /// Kafka brokers to bootstrap from, comma separated (Kafka's --bootstrap-server).
    #[arg(
        long,
        global = true,
        env = "STRATA_BOOTSTRAP_SERVER",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap_server: String,

    /// Deadline for each request to a broker, in milliseconds.
    #[arg(long, global = true, default_value_t = 30_000)]
    request_timeout_ms: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, describe, alter and delete topics (kafka-topics.sh).
    #[command(subcommand)]
    Topics(topics::Command),
    /// Send lines from stdin as records (kafka-console-producer.sh).
    Produce(produce::Args),
    /// Print records of a topic (kafka-console-consumer.sh).
    Consume(consume::Args),
    /// List, describe, delete consumer groups and reset their offsets
    /// (kafka-consumer-groups.sh).
    #[command(subcommand)]
    Groups(groups::Command),
    /// The ZooKeeper shell (zkCli.sh): create, get, set, delete, ls, stat, getAcl, setAcl.
    Zk(zk::ZkArgs),
}

impl Cli {
    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(&self.bootstrap_server);
        config.connection.client_id = "strata-cli".to_owned();
        config.connection.request_timeout = Duration::from_millis(self.request_timeout_ms);
        config
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let client = cli.client_config();
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Topics(command) => topics::run(client, command).await,
            Command::Produce(args) => produce::run(client, args).await,
            Command::Consume(args) => consume::run(client, args).await,
            Command::Groups(command) => groups::run(client, command).await,
            Command::Zk(args) => zk::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `strata consume | head` closes stdout early; that is not an error.
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
