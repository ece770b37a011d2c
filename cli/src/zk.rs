//! `strata zk`: zkCli's everyday commands against any ZooKeeper server (ours or
//! Apache's), printed the way zkCli prints them.

use std::io::Write;

use anyhow::Context;
use strata_coordinator::client::{Client, ClientError, parse_acl, perms_string};
use strata_coordinator::proto::{Acl, ErrorCode, Stat};

#[derive(clap::Args, Debug)]
pub struct ZkArgs {
    /// ZooKeeper server, `host:port` (the first of a comma-separated list is used).
    #[arg(long, default_value = "127.0.0.1:2181", env = "STRATA_ZK_SERVER")]
    pub server: String,
    /// Add `digest user:password` credentials before the command (zkCli's addauth).
    #[arg(long)]
    pub auth: Option<String>,
    #[command(subcommand)]
    pub command: ZkCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ZkCommand {
    /// create [-e] [-s] path [data] [acl]
    Create {
        /// Ephemeral: removed when this command's session ends.
        #[arg(short = 'e')]
        ephemeral: bool,
        /// Sequential: the server appends a 10-digit counter to the name.
        #[arg(short = 's')]
        sequential: bool,
        path: String,
        data: Option<String>,
        /// zkCli ACL syntax, e.g. `world:anyone:cdrwa` or `digest:user:hash:cdrwa`.
        acl: Option<String>,
    },
    /// get [-s] path
    Get {
        #[arg(short = 's')]
        stat: bool,
        path: String,
    },
    /// set [-s] [-v version] path data
    Set {
        #[arg(short = 's')]
        stat: bool,
        #[arg(short = 'v')]
        version: Option<i32>,
        path: String,
        data: String,
    },
    /// delete [-v version] path
    Delete {
        #[arg(short = 'v')]
        version: Option<i32>,
        path: String,
    },
    /// ls [-s] path
    Ls {
        #[arg(short = 's')]
        stat: bool,
        path: String,
    },
    /// stat path
    Stat { path: String },
    /// getAcl path
    #[command(name = "getAcl")]
    GetAcl { path: String },
    /// setAcl path acl
    #[command(name = "setAcl")]
    SetAcl {
        #[arg(short = 'v')]
        version: Option<i32>,
        path: String,
        acl: String,
    },
    /// config [-s]: the ensemble's configuration (`/zookeeper/config`)
    Config {
        #[arg(short = 's')]
        stat: bool,
    },
    /// reconfig [-s] [-v version] [--add servers] [--remove ids] | [--members servers]:
    /// change the ensemble's membership (ZooKeeper 3.5+, `reconfigEnabled=true`; needs
    /// WRITE on /zookeeper/config, e.g. `--auth super:password`)
    Reconfig {
        #[arg(short = 's')]
        stat: bool,
        /// The configuration version (hex) this change applies to.
        #[arg(short = 'v')]
        version: Option<String>,
        /// `server.N=host:quorumPort:electionPort[:role];[host:]clientPort`, comma separated.
        #[arg(long)]
        add: Option<String>,
        /// Server ids, comma separated.
        #[arg(long)]
        remove: Option<String>,
        /// The whole new membership, comma separated server lines.
        #[arg(long, conflicts_with_all = ["add", "remove"])]
        members: Option<String>,
    },
}

pub async fn run(args: ZkArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    execute(args, &mut out).await
}

/// zkCli's date format: Java's `Date.toString()` in UTC.
fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{} {} {day:02} {h:02}:{m:02}:{s:02} UTC {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

fn print_stat(out: &mut impl Write, s: &Stat) -> std::io::Result<()> {
    writeln!(out, "cZxid = {:#x}", s.czxid)?;
    writeln!(out, "ctime = {}", java_date(s.ctime))?;
    writeln!(out, "mZxid = {:#x}", s.mzxid)?;
    writeln!(out, "mtime = {}", java_date(s.mtime))?;
    writeln!(out, "pZxid = {:#x}", s.pzxid)?;
    writeln!(out, "cversion = {}", s.cversion)?;
    writeln!(out, "dataVersion = {}", s.version)?;
    writeln!(out, "aclVersion = {}", s.aversion)?;
    writeln!(out, "ephemeralOwner = {:#x}", s.ephemeral_owner)?;
    writeln!(out, "dataLength = {}", s.data_length)?;
    writeln!(out, "numChildren = {}", s.num_children)
}

fn explain(e: ClientError, path: &str) -> anyhow::Error {
    match e {
        ClientError::Server(ErrorCode::NoNode) => anyhow::anyhow!("Node does not exist: {path}"),
        ClientError::Server(ErrorCode::NodeExists) => {
            anyhow::anyhow!("Node already exists: {path}")
        }
        ClientError::Server(ErrorCode::NotEmpty) => anyhow::anyhow!("Node not empty: {path}"),
        ClientError::Server(ErrorCode::BadVersion) => {
            anyhow::anyhow!("version No is not valid : {path}")
        }
        ClientError::Server(ErrorCode::NoAuth) => {
            anyhow::anyhow!("Insufficient permission : {path}")
        }
        other => anyhow::Error::new(other),
    }
}

/// Run one command, writing what zkCli would print to `out`.
pub async fn execute(args: ZkArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let client = Client::connect(&args.server, 30_000)
        .await
        .with_context(|| format!("connecting to {}", args.server))?;
    if let Some(cred) = &args.auth {
        client.add_auth("digest", cred.as_bytes()).await?;
    }
    let result = command(&client, args.command, out).await;
    client.close().await.ok();
    result
}

async fn command(client: &Client, cmd: ZkCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        ZkCommand::Create {
            ephemeral,
            sequential,
            path,
            data,
            acl,
        } => {
            let acl = match acl {
                Some(spec) => parse_acl(&spec).context("ACL must look like scheme:id:perms")?,
                None => Acl::world_anyone(),
            };
            let flags = i32::from(ephemeral) | (i32::from(sequential) << 1);
            let data = data.unwrap_or_default();
            let created = client
                .create(&path, data.as_bytes(), &acl, flags)
                .await
                .map_err(|e| explain(e, &path))?;
            writeln!(out, "Created {created}")?;
        }
        ZkCommand::Get { stat, path } => {
            let (data, s) = client.get(&path).await.map_err(|e| explain(e, &path))?;
            if data.is_empty() {
                writeln!(out, "null")?;
            } else {
                writeln!(out, "{}", String::from_utf8_lossy(&data))?;
            }
            if stat {
                print_stat(out, &s)?;
            }
        }
        ZkCommand::Set {
            stat,
            version,
            path,
            data,
        } => {
            let s = client
                .set(&path, data.as_bytes(), version.unwrap_or(-1))
                .await
                .map_err(|e| explain(e, &path))?;
            if stat {
                print_stat(out, &s)?;
            }
        }
        ZkCommand::Delete { version, path } => {
            client
                .delete(&path, version.unwrap_or(-1))
                .await
                .map_err(|e| explain(e, &path))?;
        }
        ZkCommand::Ls { stat, path } => {
            let (mut children, s) = client
                .children(&path)
                .await
                .map_err(|e| explain(e, &path))?;
            children.sort();
            writeln!(out, "[{}]", children.join(", "))?;
            if stat {
                print_stat(out, &s)?;
            }
        }
        ZkCommand::Stat { path } => {
            let s = client
                .exists(&path)
                .await
                .map_err(|e| explain(e, &path))?
                .ok_or_else(|| anyhow::anyhow!("Node does not exist: {path}"))?;
            print_stat(out, &s)?;
        }
        ZkCommand::GetAcl { path } => {
            let (acl, _) = client.get_acl(&path).await.map_err(|e| explain(e, &path))?;
            for a in acl {
                writeln!(out, "'{},'{}", a.id.scheme, a.id.id)?;
                writeln!(out, ": {}", perms_string(a.perms))?;
            }
        }
        ZkCommand::Config { stat } => {
            let path = "/zookeeper/config";
            let (data, s) = client.get(path).await.map_err(|e| explain(e, path))?;
            writeln!(out, "{}", String::from_utf8_lossy(&data))?;
            if stat {
                print_stat(out, &s)?;
            }
        }
        ZkCommand::Reconfig {
            stat,
            version,
            add,
            remove,
            members,
        } => {
            let from = match version {
                None => -1,
                Some(v) => i64::from_str_radix(v.trim_start_matches("0x"), 16)
                    .with_context(|| format!("-v takes a hex version, got {v:?}"))?,
            };
            if add.is_none() && remove.is_none() && members.is_none() {
                anyhow::bail!("reconfig needs -add, -remove or -members");
            }
            let (data, s) = client
                .reconfig(add.as_deref(), remove.as_deref(), members.as_deref(), from)
                .await
                .map_err(|e| match e {
                    ClientError::Server(code) => anyhow::anyhow!("reconfig failed: {code}"),
                    other => anyhow::Error::new(other),
                })?;
            writeln!(out, "Committed new configuration:")?;
            writeln!(out, "{}", String::from_utf8_lossy(&data))?;
            if stat {
                print_stat(out, &s)?;
            }
        }
        ZkCommand::SetAcl { version, path, acl } => {
            let acl = parse_acl(&acl).context("ACL must look like scheme:id:perms")?;
            client
                .set_acl(&path, &acl, version.unwrap_or(-1))
                .await
                .map_err(|e| explain(e, &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_like_java() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(java_date(1_795_240_012_411), "Sat Nov 21 05:46:52 UTC 2026");
    }
}
