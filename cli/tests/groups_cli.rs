//! `strata groups` and `strata consume --group` against a live broker: two console
//! consumers in one group split a topic, `groups describe` shows them and then their
//! lag, `groups reset-offsets` is a dry run unless `--execute` and refuses an active
//! group, and `groups delete` removes the group.
//!
//! Needs `STRATA_TEST_BOOTSTRAP`; without it the test prints a notice and passes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// `groups describe` as partition → (current offset, log end offset, lag, consumer id).
fn describe(bootstrap: &str, group: &str) -> (String, BTreeMap<i32, [String; 4]>) {
    let output = ok(bootstrap, &["groups", "describe", "--group", group]);
    let rows = table_rows(&output)
        .into_iter()
        .filter(|row| row[2] != "-")
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
    (output, rows)
}

fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(value) = check() {
            return value;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what}: still not true after twenty seconds");
}

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
            "10000",
        ],
    )
    .stdin(Stdio::null())
    .spawn()
    .expect("start strata consume")
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
        let (_, rows) = describe(b, &group);
        let owners: BTreeSet<String> = rows.values().map(|r| r[3].clone()).collect();
        (rows.len() == PARTITIONS && owners.len() == 2 && !owners.contains("-")).then_some(rows)
    });
    let mut per_member: BTreeMap<&str, usize> = BTreeMap::new();
    for row in owners.values() {
        *per_member.entry(row[3].as_str()).or_default() += 1;
    }
    assert_eq!(per_member.values().copied().collect::<Vec<_>>(), [2, 2]);
    let listed = ok(b, &["groups", "list"]);
    assert!(listed.lines().any(|line| line == group), "{listed}");
    let state = ok(b, &["groups", "describe", "--group", &group, "--state"]);
    let state_row = &table_rows(&state)[0];
    assert_eq!(state_row[state_row.len() - 2..], ["Stable", "2"], "{state}");

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
