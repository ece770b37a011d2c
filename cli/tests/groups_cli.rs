//! `strata groups` and `strata consume --group` against a live broker: two console
//! consumers in one group split a topic, `groups describe` shows them and then their
//! lag, `groups reset-offsets` is a dry run unless `--execute` and refuses an active
//! group, and `groups delete` removes the group.
//!
//! Needs `STRATA_TEST_BOOTSTRAP`; without it the test prints a notice and passes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use common::stdout_if_ok;
use common::wait::eventually;

const PARTITIONS: usize = 4;
const RECORDS: usize = 200;

fn bootstrap() -> Option<String> {
    match std::env::var("STRATA_TEST_BOOTSTRAP") {
        Ok(addr) if !addr.is_empty() => Some(addr),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "skipping: set STRATA_TEST_BOOTSTRAP=host:port to run against a broker"
            );
            None
        }
    }
}

fn command(bootstrap: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command
        .arg("--bootstrap-server")
        .arg(bootstrap)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn strata(bootstrap: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = command(bootstrap, args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("start strata");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait for strata")
}

fn ok(bootstrap: &str, args: &[&str]) -> String {
    let output = strata(bootstrap, args, None);
    assert!(
        output.status.success(),
        "strata {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Rows of a `GROUP ...` table in `output`, each as its whitespace-separated cells.
fn table_rows(output: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .skip_while(|line| !line.starts_with("GROUP "))
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

type Described = (String, BTreeMap<i32, [String; 4]>);

/// `groups describe` as partition → (current offset, log end offset, lag, consumer id),
/// or the command's error while it fails (the group may not exist yet: a member that was
/// just started has not joined).
fn try_describe(bootstrap: &str, group: &str) -> Result<Described, String> {
    let output = stdout_if_ok(strata(
        bootstrap,
        &["groups", "describe", "--group", group],
        None,
    ))?;
    let rows = table_rows(&output)
        .into_iter()
        .filter(|row| row.len() >= 7 && row[2] != "-")
        .map(|row| {
            (
                row[2].parse().expect("partition"),
                [
                    row[3].clone(),
                    row[4].clone(),
                    row[5].clone(),
                    row[6].clone(),
                ],
            )
        })
        .collect();
    Ok((output, rows))
}

/// `groups describe` of a group that must exist.
fn describe(bootstrap: &str, group: &str) -> Described {
    try_describe(bootstrap, group)
        .unwrap_or_else(|e| panic!("strata groups describe --group {group} failed: {e}"))
}

/// A console consumer in `group`. The test stops it with [`stop_member`] once the group
/// has committed every record; `--timeout-ms` only ends one a failed test left behind
/// (it counts from the start, so it must outlast every wait before the records come).
fn spawn_member(bootstrap: &str, topic: &str, group: &str) -> Child {
    command(
        bootstrap,
        &[
            "consume",
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--timeout-ms",
            "300000",
        ],
    )
    .stdin(Stdio::null())
    .spawn()
    .expect("start strata consume")
}

/// SIGTERM, as Ctrl-C or a process manager would: the member commits, leaves the group
/// and exits successfully.
fn stop_member(member: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &member.id().to_string()])
        .status();
}

/// NEW-OFFSET per partition from a `reset-offsets` table.
fn new_offsets(output: &str) -> BTreeMap<i32, i64> {
    table_rows(output)
        .into_iter()
        .map(|row| (row[2].parse().unwrap(), row[3].parse().unwrap()))
        .collect()
}

#[test]
fn consumer_group_round_trip() {
    let Some(bootstrap) = bootstrap() else { return };
    let b = bootstrap.as_str();
    let topic = unique("groups-cli");
    let group = unique("cli-group");
    let partitions = PARTITIONS.to_string();
    ok(
        b,
        &[
            "topics",
            "create",
            "--topic",
            &topic,
            "--partitions",
            &partitions,
        ],
    );

    // Two members join; the range assignor gives each two of the four partitions.
    let first = spawn_member(b, &topic, &group);
    let second = spawn_member(b, &topic, &group);
    let owners = eventually("both members own partitions", || {
        let (output, rows) = try_describe(b, &group)?;
        let owners: BTreeSet<String> = rows.values().map(|r| r[3].clone()).collect();
        if rows.len() == PARTITIONS && owners.len() == 2 && !owners.contains("-") {
            Ok(rows)
        } else {
            Err(output)
        }
    });
    let mut per_member: BTreeMap<&str, usize> = BTreeMap::new();
    for row in owners.values() {
        *per_member.entry(row[3].as_str()).or_default() += 1;
    }
    assert_eq!(per_member.values().copied().collect::<Vec<_>>(), [2, 2]);
    let listed = ok(b, &["groups", "list"]);
    assert!(listed.lines().any(|line| line == group), "{listed}");
    eventually("the group is Stable with two members", || {
        let state = stdout_if_ok(strata(
            b,
            &["groups", "describe", "--group", &group, "--state"],
            None,
        ))?;
        match table_rows(&state).first() {
            Some(row) if row.len() >= 2 && row[row.len() - 2..] == ["Stable", "2"] => Ok(()),
            _ => Err(state),
        }
    });

    // Resetting an active group is refused with Kafka's message.
    let refused = strata(
        b,
        &[
            "groups",
            "reset-offsets",
            "--group",
            &group,
            "--topic",
            &topic,
            "--to-earliest",
            "--execute",
        ],
        None,
    );
    assert!(!refused.status.success());
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        format!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is Stable."
        )
    );

    // Keys spread the records over every partition.
    let input: String = (0..RECORDS)
        .map(|i| format!("key-{}:value-{i}\n", i % 31))
        .collect();
    let produced = strata(
        b,
        &["produce", "--topic", &topic, "--key-separator", ":"],
        Some(input.as_bytes()),
    );
    assert!(produced.status.success());

    // The members are done once the group has committed every record; then they are
    // stopped, rather than left to notice that nothing more comes.
    eventually("the members commit every record", || {
        let (output, rows) = try_describe(b, &group)?;
        let log_end: i64 = rows.values().filter_map(|r| r[1].parse::<i64>().ok()).sum();
        if rows.len() == PARTITIONS
            && log_end == RECORDS as i64
            && rows.values().all(|r| r[2] == "0")
        {
            Ok(())
        } else {
            Err(output)
        }
    });
    stop_member(&first);
    stop_member(&second);
    let outputs: Vec<Output> = [first, second]
        .into_iter()
        .map(|child| child.wait_with_output().expect("wait for member"))
        .collect();
    let mut values: Vec<String> = Vec::new();
    for output in &outputs {
        assert!(
            output.status.success(),
            "member failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed = String::from_utf8(output.stdout.clone()).unwrap();
        assert!(
            !printed.is_empty(),
            "each member owns partitions with records"
        );
        values.extend(printed.lines().map(str::to_owned));
    }
    values.sort();
    let mut expected: Vec<String> = (0..RECORDS).map(|i| format!("value-{i}")).collect();
    expected.sort();
    assert_eq!(values, expected, "every record consumed exactly once");

    // Both left after committing: no members, no lag.
    let (output, rows) = describe(b, &group);
    assert!(
        output.contains(&format!("Consumer group '{group}' has no active members.")),
        "{output}"
    );
    assert_eq!(rows.len(), PARTITIONS);
    let mut log_end = BTreeMap::new();
    for (partition, [current, end, lag, consumer]) in &rows {
        assert_eq!(current, end, "{output}");
        assert_eq!(lag, "0", "{output}");
        assert_eq!(consumer, "-", "{output}");
        log_end.insert(*partition, end.parse::<i64>().unwrap());
    }
    assert_eq!(log_end.values().sum::<i64>(), RECORDS as i64);

    // --to-earliest without --execute only prints.
    let dry = ok(
        b,
        &[
            "groups",
            "reset-offsets",
            "--group",
            &group,
            "--topic",
            &topic,
            "--to-earliest",
        ],
    );
    assert!(new_offsets(&dry).values().all(|&o| o == 0), "{dry}");
    assert_eq!(new_offsets(&dry).len(), PARTITIONS);
    assert!(describe(b, &group).1.values().all(|r| r[2] == "0"));

    // --execute commits: the lag becomes the log end offset.
    ok(
        b,
        &[
            "groups",
            "reset-offsets",
            "--group",
            &group,
            "--all-topics",
            "--to-earliest",
            "--execute",
        ],
    );
    for (partition, row) in describe(b, &group).1 {
        assert_eq!(row[0], "0");
        assert_eq!(row[2], log_end[&partition].to_string());
    }

    // --shift-by on chosen partitions, clamped at the log end.
    let shifted = ok(
        b,
        &[
            "groups",
            "reset-offsets",
            "--group",
            &group,
            "--topic",
            &format!("{topic}:0,1"),
            "--shift-by",
            "5",
            "--execute",
        ],
    );
    let shifted = new_offsets(&shifted);
    assert_eq!(shifted.keys().copied().collect::<Vec<_>>(), [0, 1]);
    let rows = describe(b, &group).1;
    for p in [0, 1] {
        let want = 5.min(log_end[&p]);
        assert_eq!(shifted[&p], want);
        assert_eq!(rows[&p][0], want.to_string());
    }
    assert_eq!(rows[&2][0], "0");
    let back = ok(
        b,
        &[
            "groups",
            "reset-offsets",
            "--group",
            &group,
            "--topic",
            &format!("{topic}:0"),
            "--shift-by",
            "-2",
        ],
    );
    assert_eq!(new_offsets(&back)[&0], (5.min(log_end[&0]) - 2).max(0));

    // --to-datetime: before every record is the log start, after every record the end.
    let past = ok(
        b,
        &[
            "groups",
            "reset-offsets",
            "--group",
            &group,
            "--topic",
            &topic,
            "--to-datetime",
            "2000-01-01T00:00:00.000",
            "--execute",
        ],
    );
    assert!(new_offsets(&past).values().all(|&o| o == 0), "{past}");
    let future = ok(
        b,
        &[
            "groups",
            "reset-offsets",
            "--group",
            &group,
            "--topic",
            &topic,
            "--to-datetime",
            "2999-01-01T00:00:00.000Z",
            "--execute",
        ],
    );
    assert_eq!(new_offsets(&future), log_end, "{future}");
    assert!(describe(b, &group).1.values().all(|r| r[2] == "0"));

    // Delete.
    let deleted = ok(b, &["groups", "delete", "--group", &group]);
    assert_eq!(
        deleted.trim(),
        format!("Deletion of requested consumer groups ('{group}') was successful.")
    );
    let gone = strata(b, &["groups", "describe", "--group", &group], None);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("does not exist"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    assert!(!ok(b, &["groups", "list"]).lines().any(|line| line == group));
}
