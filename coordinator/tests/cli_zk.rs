//! `strata zk` (cli/src/zk.rs) against a standalone server: the zkCli commands the
//! reference notes use, parsed and printed as the CLI does.

mod support;

// `run` (stdout) is the CLI's entry point; the test drives `execute` instead.
#[allow(dead_code)]
#[path = "../../cli/src/zk.rs"]
mod zk;

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    zk: zk::ZkArgs,
}

async fn strata_zk(server: &str, args: &[&str]) -> anyhow::Result<String> {
    let argv = ["strata-zk", "--server", server]
        .into_iter()
        .chain(args.iter().copied());
    let cli = Cli::try_parse_from(argv)?;
    let mut out = Vec::new();
    zk::execute(cli.zk, &mut out).await?;
    Ok(String::from_utf8(out)?)
}

#[tokio::test]
async fn zkcli_commands_from_the_notes() {
    let e = support::Ensemble::standalone("");
    let s = e.servers[0].addr();
    assert_eq!(
        strata_zk(&s, &["create", "/my-node", "some data"])
            .await
            .unwrap(),
        "Created /my-node\n"
    );
    assert_eq!(
        strata_zk(&s, &["get", "/my-node"]).await.unwrap(),
        "some data\n"
    );
    assert_eq!(
        strata_zk(&s, &["ls", "/"]).await.unwrap(),
        "[my-node, zookeeper]\n"
    );
    strata_zk(&s, &["set", "/my-node", "new data"])
        .await
        .unwrap();
    let stat = strata_zk(&s, &["stat", "/my-node"]).await.unwrap();
    assert!(stat.contains("dataVersion = 1\n"), "{stat}");
    assert!(stat.contains("dataLength = 8\n"), "{stat}");
    let seq = strata_zk(&s, &["create", "-s", "/my-node/q-", ""])
        .await
        .unwrap();
    assert_eq!(seq, "Created /my-node/q-0000000000\n");
    // An ephemeral lives as long as the command's session.
    strata_zk(&s, &["create", "-e", "/gone"]).await.unwrap();
    assert!(strata_zk(&s, &["get", "/gone"]).await.is_err());
    let err = strata_zk(&s, &["delete", "/my-node"]).await.unwrap_err();
    assert_eq!(err.to_string(), "Node not empty: /my-node");
    assert_eq!(
        strata_zk(&s, &["getAcl", "/my-node"]).await.unwrap(),
        "'world,'anyone\n: cdrwa\n"
    );
    strata_zk(&s, &["delete", "/my-node/q-0000000000"])
        .await
        .unwrap();
    strata_zk(&s, &["setAcl", "/my-node", "world:anyone:r"])
        .await
        .unwrap();
    assert_eq!(
        strata_zk(&s, &["getAcl", "/my-node"]).await.unwrap(),
        "'world,'anyone\n: r\n"
    );
    let err = strata_zk(&s, &["set", "/my-node", "x"]).await.unwrap_err();
    assert_eq!(err.to_string(), "Insufficient permission : /my-node");
    strata_zk(&s, &["delete", "/my-node"]).await.unwrap();
    assert_eq!(strata_zk(&s, &["ls", "/"]).await.unwrap(), "[zookeeper]\n");
}

#[tokio::test]
async fn config_and_reconfig_as_zkcli_prints_them() {
    let password = "super:reconfig";
    let digest = strata_coordinator::acl::digest_id(password).unwrap();
    let e = support::Ensemble::start(
        3,
        &format!("reconfigEnabled=true\nDigestAuthenticationProvider.superDigest={digest}"),
    );
    let s = e.servers[0].addr();
    let config = strata_zk(&s, &["config"]).await.unwrap();
    assert_eq!(config.matches("server.").count(), 3, "{config}");
    assert!(config.ends_with("version=0\n"), "{config}");
    let refused = strata_zk(&s, &["reconfig", "--remove", "3"])
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("reconfig failed"), "{refused}");
    let done = strata_zk(&s, &["--auth", password, "reconfig", "--remove", "3"])
        .await
        .unwrap();
    assert!(done.starts_with("Committed new configuration:\n"), "{done}");
    assert!(
        done.contains("server.2=") && !done.contains("server.3="),
        "{done}"
    );
    // Had server 3 led, the two left elect one of their own first.
    e.wait_leader();
    e.wait_serving(0, std::time::Duration::from_secs(30));
    let stale = strata_zk(
        &s,
        &["--auth", password, "reconfig", "-v", "0", "--remove", "2"],
    )
    .await
    .unwrap_err();
    assert!(stale.to_string().contains("bad version"), "{stale}");
    // Another server has it once the commit reached it.
    let mut config = String::new();
    for _ in 0..100 {
        config = strata_zk(&e.servers[1].addr(), &["config"]).await.unwrap();
        if config.matches("server.").count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(config.matches("server.").count(), 2, "{config}");
}
