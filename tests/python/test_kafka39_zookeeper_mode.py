"""Apache Kafka 3.9.1 in ZooKeeper mode on a three-server strata-coordinator ensemble, and
the same run on Apache ZooKeeper 3.9 to hold it against.

Three brokers (127.0.0.1-3) on three coordinator servers (127.0.0.1-3): an idempotent,
acks=all producer and a consumer group; a topic created while the coordinator elects a
new leader (its leader SIGKILLed); the controller broker SIGKILLed and later restarted.
Both runs must end in the same facts, and Kafka's logs must show nothing about its
ZooKeeper client on strata-coordinator that they do not show on Apache ZooKeeper: no
"Xid out of order", no reconnect loop, no session expiry, no other KeeperException.

Also: Apache ZooKeeper's Java client (the one Kafka 3.9 ships) holds its watches across
a server restart, on both.
"""

import json
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.retry import KazooRetry

import kafka39
from waiting import wait_for
from zk_support import Ensemble, free_port

# Kafka's own waits (a dead controller's session timeout, replicas catching up) come on
# top of a loaded machine's: twice the usual deadline.
WAIT = 120


def kazoo(ensemble):
    retry = dict(max_tries=-1, delay=0.1, max_delay=1)
    zk = KazooClient(
        hosts=ensemble.hosts(),
        timeout=10,
        connection_retry=KazooRetry(**retry),
        command_retry=KazooRetry(**retry),
    )
    zk.start(timeout=30)
    return zk


def registered(zk):
    try:
        return sorted(int(b) for b in zk.retry(zk.get_children, "/brokers/ids"))
    except NoNodeError:
        return []


def controller(zk):
    try:
        data, _ = zk.retry(zk.get, "/controller")
    except NoNodeError:
        return None
    return json.loads(data)["brokerid"]


def produce(bootstrap, topic, start, count):
    """An idempotent, acks=all producer; every message must be acknowledged."""
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": WAIT * 1000,
        }
    )
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(err)

    for i in range(start, start + count):
        while True:
            try:
                p.produce(topic, value=f"{topic}-{i}".encode(), on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(WAIT) == 0, f"{topic}: messages left unacknowledged"
    assert not errors, f"{topic}: {errors[:3]}"
    return count


def consume(bootstrap, topic, group, want):
    """Consume `want` messages as member of `group` and commit; returns their values."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    values = []
    deadline = time.time() + WAIT
    try:
        while len(values) < want and time.time() < deadline:
            msg = c.poll(0.5)
            if msg is not None and not msg.error():
                values.append(msg.value().decode())
        if values:
            c.commit(asynchronous=False)
    finally:
        c.close()
    return values


def isr_full(admin, topics):
    md = admin.list_topics(timeout=10)
    return all(
        t in md.topics
        and md.topics[t].partitions
        and all(len(p.isrs) == 3 for p in md.topics[t].partitions.values())
        for t in topics
    )


def every_broker_knows_all(brokers):
    """Each broker's own metadata lists all three brokers: a registration in ZooKeeper comes
    first, the controller's UpdateMetadata to every broker follows it, and CreateTopics
    checks the replication factor against the latter."""
    for b in brokers.values():
        try:
            md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
        except KafkaException:
            return False
        if len(md.brokers) != len(brokers):
            return False
    return True


def run_scenario(root, impl):
    """The whole run on one coordinator implementation; returns the facts it ended in
    and what Kafka's ZooKeeper client logged."""
    e = Ensemble(root / "zk", n=3, tick_ms=2000, impl=impl)
    port = free_port()
    brokers = {}
    zk = None
    facts = {}
    try:
        zk_connect = e.hosts()
        brokers = {i: kafka39.Broker(root, i, port, zk_connect) for i in (1, 2, 3)}
        for b in brokers.values():
            b.start()
        zk = kazoo(e)
        wait_for(lambda: registered(zk) == [1, 2, 3], WAIT, "three brokers registered")
        facts["brokers registered"] = registered(zk)
        wait_for(lambda: every_broker_knows_all(brokers), WAIT, "every broker knows all three")
        bootstrap = ",".join(b.bootstrap for b in brokers.values())
        admin = AdminClient({"bootstrap.servers": bootstrap})

        admin.create_topics([NewTopic("orders", 3, 3)])["orders"].result(WAIT)
        facts["orders produced"] = produce(bootstrap, "orders", 0, 3000)
        first = consume(bootstrap, "orders", "audit", 3000)
        facts["audit consumed"] = (len(first), len(set(first)))

        # A topic created while the coordinator elects a new leader.
        leader = e.wait_leader()
        e.kill(leader)
        created = admin.create_topics([NewTopic("during-election", 3, 3)])
        created["during-election"].result(WAIT)
        facts["topic created during election"] = True
        facts["during-election produced"] = produce(bootstrap, "during-election", 0, 500)
        e.start(leader)
        e.wait_serving(leader, timeout=WAIT)

        # The controller broker dies; another takes over, writes go on.
        killed = controller(zk)
        brokers[killed].kill()
        wait_for(lambda: controller(zk) not in (None, killed), WAIT, "a new controller")
        facts["controller moved"] = True
        live = ",".join(b.bootstrap for i, b in brokers.items() if i != killed)
        facts["orders produced after controller kill"] = produce(live, "orders", 3000, 2000)
        more = consume(live, "orders", "audit", 2000)
        facts["audit consumed after controller kill"] = (len(more), len(set(more)))
        facts["audit saw each message once"] = set(first).isdisjoint(more)

        # The killed broker comes back and catches up.
        brokers[killed].start()
        wait_for(lambda: registered(zk) == [1, 2, 3], WAIT, "the restarted broker registered")
        wait_for(
            lambda: isr_full(admin, ["orders", "during-election"]),
            WAIT,
            "every replica back in sync",
        )
        facts["isr full after restart"] = True
        everything = consume(bootstrap, "orders", "final", 5000)
        facts["final consumed"] = (len(everything), len(set(everything)))
        return facts, kafka39.zookeeper_client_report(
            [b.log() for b in brokers.values()]
        )
    except BaseException:
        for i, b in brokers.items():
            print(f"--- broker {i} ({impl}), last lines ---")
            print("\n".join(b.log().splitlines()[-40:]) if b.log_path().exists() else "")
        for i in range(1, 4):
            print(f"--- coordinator {i} ({impl}), last lines ---")
            print("\n".join(e.log(i).splitlines()[-40:]))
        raise
    finally:
        if zk is not None:
            zk.stop()
            zk.close()
        for b in brokers.values():
            b.kill()
        e.close()


EXPECTED = {
    "brokers registered": [1, 2, 3],
    "orders produced": 3000,
    "audit consumed": (3000, 3000),
    "topic created during election": True,
    "during-election produced": 500,
    "controller moved": True,
    "orders produced after controller kill": 2000,
    "audit consumed after controller kill": (2000, 2000),
    "audit saw each message once": True,
    "isr full after restart": True,
    "final consumed": (5000, 5000),
}


def test_kafka_39_runs_on_strata_coordinator_as_on_apache_zookeeper(tmp_path):
    zk_facts, zk_report = run_scenario(tmp_path / "apache", "zookeeper")
    assert zk_facts == EXPECTED, "the reference run on Apache ZooKeeper"
    facts, report = run_scenario(tmp_path / "strata", "strata")
    print(f"Apache ZooKeeper: {zk_report}\nstrata-coordinator: {report}")
    assert facts == zk_facts
    assert report["xid out of order"] == 0
    assert report["session expiries"] <= zk_report["session expiries"]
    # One new session per broker and coordinator election is expected; a reconnect loop
    # is dozens.
    assert report["sessions established"] <= zk_report["sessions established"] + 3
    assert report["keeper exceptions"] <= zk_report["keeper exceptions"], (
        "KeeperExceptions only on strata-coordinator: "
        f"{report['keeper exceptions'] - zk_report['keeper exceptions']}"
    )


@pytest.mark.parametrize("impl", ["zookeeper", "strata"])
def test_java_client_holds_watches_across_a_server_restart(tmp_path, impl):
    classes = kafka39.java_classes(tmp_path / "classes", "ZkWatchesAcrossRestart.java")
    e = Ensemble(tmp_path / "zk", n=3, tick_ms=1000, impl=impl)
    try:
        leader = e.wait_leader()
        follower = 1 if leader != 1 else 2
        # Only the follower's address: the client must come back to the same server,
        # restarted, with nothing of its watches left there.
        proc = subprocess.Popen(
            [
                "java",
                f"-Dlog4j.configuration=file:{kafka39.kafka_home() / 'config' / 'log4j.properties'}",
                "-cp",
                classes,
                "ZkWatchesAcrossRestart",
                e.addr(follower),
                e.hosts(),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = []
        try:
            for line in proc.stdout:
                lines.append(line.rstrip())
                if line.startswith("WATCHING"):
                    e.kill(follower)
                    e.start(follower)
            proc.wait(WAIT)
        finally:
            proc.kill()
        output = "\n".join(lines)
        assert proc.returncode == 0 and "\nOK " in f"\n{output}", output
        assert "Xid out of order" not in output, output
    finally:
        e.close()
