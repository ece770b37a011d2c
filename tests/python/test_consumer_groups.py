"""Consumer groups with three different clients in one group.

librdkafka (through the Rust `rdkafka` crate, broker/examples/group_member.rs),
confluent-kafka and kafka-python consume one 6-partition topic together. Each member
commits after processing every poll, so a record may only be delivered twice if it was
processed after its partition's last commit by a member that then left or died.
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import CommitFailedError

from strata_broker import BIN_DIR
from waiting import wait_for

HERE = Path(__file__).parent
RDKAFKA_MEMBER = BIN_DIR / "examples" / "group_member"
TOPIC = "shared-6"
GROUP_SETTINGS = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}


class Member:
    """One group member in its own process, reporting JSON lines."""

    def __init__(self, name, client, bootstrap, group, extra=None):
        settings = dict(GROUP_SETTINGS, **(extra or {}))
        args = [f"{k}={v}" for k, v in settings.items()]
        if client == "rdkafka":
            if not RDKAFKA_MEMBER.exists():
                raise RuntimeError(f"{RDKAFKA_MEMBER} missing: cargo build --workspace --examples")
            cmd = [str(RDKAFKA_MEMBER), bootstrap, group, TOPIC, *args]
        else:
            cmd = [sys.executable, str(HERE / "group_member.py"), client, bootstrap, group, TOPIC, *args]
        self.name = name
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.events = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(event)

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def assignment(self):
        assigned = [e["partitions"] for e in self.snapshot() if e["event"] == "assigned"]
        return set(assigned[-1]) if assigned else set()

    def records(self):
        return [(e["partition"], e["offset"], e["value"]) for e in self.snapshot() if e["event"] == "record"]

    def last_commits(self):
        commits = {}
        for e in self.snapshot():
            if e["event"] == "committed":
                commits[e["partition"]] = e["offset"]
        return commits

    def leave(self):
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def produce(bootstrap, start, count):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        p.produce(TOPIC, key=f"k{i % 97}", value=f"r{i:06}")
    assert p.flush(30) == 0
    return {f"r{i:06}" for i in range(start, start + count)}


def create_topic(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(TOPIC, num_partitions=6, replication_factor=1)]).values():
        f.result(timeout=30)


def check_delivery(members, produced):
    """Nothing lost; a duplicate is only a record its first reader processed after its
    last commit for that partition (the uncommitted window)."""
    first_reader = {}
    duplicates = []
    for m in members:
        for p, o, v in m.records():
            if v in first_reader and first_reader[v][0] is not m:
                duplicates.append((v, p, o))
            else:
                first_reader.setdefault(v, (m, p, o))
    missing = produced - set(first_reader)
    assert not missing, f"{len(missing)} records never delivered, e.g. {sorted(missing)[:5]}"
    for v, p, o in duplicates:
        m, _, _ = first_reader[v]
        committed = m.last_commits().get(p, 0)
        assert o >= committed, f"{v} at {p}:{o} redelivered although {m.name} committed up to {committed}"
    return duplicates


@pytest.fixture
def members():
    started = []
    yield started
    for m in started:
        m.close()


def start_three(broker, members, group):
    for name, client in [("rdkafka", "rdkafka"), ("confluent", "confluent"), ("kafka-python", "kafka-python")]:
        members.append(Member(name, client, broker.bootstrap, group))

    def balanced():
        sets = [m.assignment() for m in members]
        union = set().union(*sets)
        return union == set(range(6)) and sum(len(s) for s in sets) == 6 and all(sets)

    wait_for(balanced, 90, "each of the three clients to own a disjoint share of the 6 partitions")


def test_mixed_clients_share_partitions_and_take_over_after_leave(broker, members):
    create_topic(broker.bootstrap)
    produced = produce(broker.bootstrap, 0, 3000)
    start_three(broker, members, "mixed-leave")
    rk, ck, kp = members
    wait_for(lambda: sum(len(m.records()) for m in members) >= 1000, 60, "consumption to start")

    kp.leave()
    wait_for(lambda: rk.assignment() | ck.assignment() == set(range(6))
             and not rk.assignment() & ck.assignment(), 60, "the others to take over after a leave")
    produced |= produce(broker.bootstrap, 3000, 3000)
    wait_for(lambda: len({v for m in members for _, _, v in m.records()}) >= len(produced), 90,
             "every record to be consumed")
    check_delivery(members, produced)


def test_killed_member_session_expires_and_others_take_over(broker, members):
    create_topic(broker.bootstrap)
    # Records come after all three own partitions: a member alone in the group at first
    # would otherwise read everything before the others join.
    start_three(broker, members, "mixed-kill")
    produced = produce(broker.bootstrap, 0, 3000)
    rk, ck, kp = members
    wait_for(lambda: len(rk.records()) > 0, 60, "the librdkafka member to consume")

    rk.kill()  # no LeaveGroup: the broker must notice the missing heartbeats
    wait_for(lambda: ck.assignment() | kp.assignment() == set(range(6))
             and not ck.assignment() & kp.assignment(), 60, "session expiry and takeover")
    produced |= produce(broker.bootstrap, 3000, 3000)
    wait_for(lambda: len({v for m in members for _, _, v in m.records()}) >= len(produced), 90,
             "every record to be consumed")
    check_delivery(members, produced)


def test_slow_consumer_is_removed_and_its_late_commit_rejected(broker):
    """The reference notes' duplicate-consumption case: processing outlasts
    max.poll.interval.ms, the group rebalances without the slow member, and its commit
    afterwards fails, so another member consumes the same records again."""
    create_topic(broker.bootstrap)
    produce(broker.bootstrap, 0, 600)
    slow = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="slow-group", enable_auto_commit=False,
                         auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500,
                         max_poll_interval_ms=7000, max_poll_records=50)
    slow.subscribe([TOPIC])
    batch = {}
    deadline = time.time() + 60
    while not batch and time.time() < deadline:
        batch = slow.poll(timeout_ms=500)
    assert batch, "the slow consumer got records"
    processed = {tp: msgs[-1].offset + 1 for tp, msgs in batch.items()}

    # A second member joins while the first is "processing" and never polls again in time.
    fast = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="slow-group", enable_auto_commit=False,
                         auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500,
                         max_poll_interval_ms=30000)
    fast.subscribe([TOPIC])
    redelivered = set()
    deadline = time.time() + 60
    while time.time() < deadline and len(fast.assignment()) < 6:
        for tp, msgs in fast.poll(timeout_ms=200).items():
            redelivered |= {(tp.partition, m.offset) for m in msgs}
    assert len(fast.assignment()) == 6, "the slow member was removed and the other took everything"

    with pytest.raises(CommitFailedError) as failure:
        slow.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in processed.items()})
    print(f"the slow consumer's late commit fails with: {failure.value!r}")

    # What the slow member processed is delivered again: the duplicate consumption.
    wanted = {(tp.partition, o) for tp, msgs in batch.items() for o in [m.offset for m in msgs]}
    deadline = time.time() + 30
    while not wanted <= redelivered and time.time() < deadline:
        for tp, msgs in fast.poll(timeout_ms=200).items():
            redelivered |= {(tp.partition, m.offset) for m in msgs}
    assert wanted <= redelivered
    slow.close(autocommit=False)
    fast.close()
