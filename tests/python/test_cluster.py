"""Three strata-brokers replicating on a three-server ZooKeeper ensemble — once on
strata-coordinator and once on Apache ZooKeeper 3.9 — driven by clients and tools no one
here wrote: librdkafka (confluent-kafka), kafka-python, and Apache Kafka's own Java
producer and admin tools (kafka-topics, kafka-leader-election, kafka-reassign-partitions,
VerifiableProducer).
"""

import collections
import json
import os
import re
import subprocess
import threading
import time

import pytest
from confluent_kafka import KafkaError, Producer
from kafka import KafkaProducer

from strata_broker import metric
from strata_cluster import BackgroundProducer, StrataCluster, check_acknowledged, consume_all
from waiting import wait_for
from zk_support import REPO, Ensemble

KAFKA_CLASS = REPO / "tools" / "kafka-class.sh"


def kafka_tool(cls, *args, timeout=120, check=True):
    out = subprocess.run(
        ["bash", str(KAFKA_CLASS), cls, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"{cls} {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture(scope="module", params=["strata", "zookeeper"])
def cluster(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"cluster-{request.param}")
    ensemble = Ensemble(root / "zk", n=3, impl=request.param)
    cluster = StrataCluster(root / "brokers", ensemble)
    yield cluster
    cluster.close()
    ensemble.close()


@pytest.fixture(autouse=True)
def every_broker_running(cluster, request):
    """Each test starts and ends with all three brokers up; logs are shown on failure."""
    for i in cluster.ids:
        if i not in cluster.running():
            cluster.start(i)
    cluster.wait_ready(list(cluster.ids))
    yield
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        for i in cluster.ids:
            print(f"--- broker {i} log (tail) ---\n{cluster.log(i)[-6000:]}")


def unique(name):
    return f"{name}-{time.time_ns() % 10**9}"


def test_rf3_topic_is_described_as_it_replicates(cluster):
    topic = unique("replicated")
    out = kafka_tool(
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server", cluster.bootstrap,
        "--create", "--topic", topic, "--partitions", "3", "--replication-factor", "3",
        "--config", "min.insync.replicas=2",
    )
    assert f"Created topic {topic}" in out.stdout
    cluster.wait_partition(topic, lambda ps: all(len(p[2]) == 3 for p in ps.values()),
                           what="all three replicas in sync")
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(300):
        producer.produce(topic, key=str(i).encode(), value=f"value-{i}".encode())
    assert producer.flush(60) == 0
    # Kafka's kafka-topics --describe shows the leader, replicas and ISR the brokers hold.
    described = kafka_tool(
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server", cluster.bootstrap, "--describe", "--topic", topic,
    ).stdout
    _, _, partitions = cluster.metadata(topic)
    for p, (leader, replicas, isr) in partitions.items():
        line = next(l for l in described.splitlines() if f"Partition: {p}\t" in l)
        assert f"Leader: {leader}\t" in line, line
        assert f"Replicas: {','.join(map(str, replicas))}\t" in line, line
        assert sorted(int(b) for b in line.split("Isr: ")[1].split("\t")[0].split(",")) == sorted(replicas), line
    # Every replica holds every record: the log end offsets in each broker's metrics agree.
    records = consume_all(cluster.bootstrap, topic)
    assert len(records) == 300
    # Followers fetch in incremental fetch sessions (KIP-227): each leader holds one from
    # each of the two other brokers, covering the partitions they follow there.
    for b in cluster.ids:
        led = sum(1 for leader, _, _ in partitions.values() if leader == b)
        if not led:
            continue

        def sessions_of_followers(b=b, led=led):
            sessions = metric(cluster.metrics_port, "kafka_server_fetchsessioncache_numincrementalfetchsessions",
                              host=cluster.host(b))
            cached = metric(cluster.metrics_port,
                            "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached",
                            host=cluster.host(b))
            return sessions >= 2 and cached >= 2 * led

        wait_for(sessions_of_followers, timeout=30, what=f"the followers' fetch sessions on broker {b}")


class VerifiableProducer:
    """Kafka's own `VerifiableProducer` (idempotent, acks=all) in the background. Its
    log, with what its sender decides per partition (retries, leaders named in errors,
    epoch bumps, sequence resets), and every send's outcome are kept in `tmp_path`,
    beside the brokers' logs, for when a test fails."""

    def __init__(self, tmp_path, bootstrap, topic, count, rate, config=""):
        self.count = count
        props = tmp_path / "producer.properties"
        props.write_text(
            "acks=all\nenable.idempotence=true\nretries=2147483647\ndelivery.timeout.ms=120000\n" + config
        )
        log_config = tmp_path / "log4j2.properties"
        log_config.write_text(
            "appender.stderr.type = Console\nappender.stderr.name = STDERR\nappender.stderr.target = SYSTEM_ERR\n"
            "appender.stderr.layout.type = PatternLayout\nappender.stderr.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = warn\nrootLogger.appenderRef.stderr.ref = STDERR\n"
            "logger.producer.name = org.apache.kafka.clients.producer.internals\nlogger.producer.level = debug\n"
        )
        self.log_path = tmp_path / "verifiable-producer.log"
        self._log = open(self.log_path, "w")
        self.acked = {}
        self.errors = collections.Counter()
        self.proc = subprocess.Popen(
            ["bash", str(KAFKA_CLASS), "org.apache.kafka.tools.VerifiableProducer",
             "--bootstrap-server", bootstrap, "--topic", topic,
             "--max-messages", str(count), "--throughput", str(rate), "--value-prefix", "7",
             "--producer.config", str(props)],
            stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**os.environ, "KAFKA_LOG4J_OPTS": f"-Dlog4j2.configurationFile={log_config}"},
        )
        self._events = open(tmp_path / "verifiable-producer.jsonl", "w")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self._events.write(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("name") == "producer_send_success":
                self.acked[(event["partition"], event["offset"])] = event["value"].encode()
            elif event.get("name") == "producer_send_error":
                self.errors[(event.get("exception"), event.get("message"))] += 1

    def wait_acked(self, n, timeout=120):
        wait_for(lambda: len(self.acked) >= n, timeout=timeout, what=f"{n} records acknowledged to Kafka's producer")

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        """Kills the producer if it still runs (a test that failed before `finish`)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def finish(self, timeout=300):
        """Waits for every send's outcome and checks that all were acknowledged."""
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=30)
        self._log.close()
        self._events.close()
        assert len(self.acked) == self.count, (
            f"Java producer acknowledged {len(self.acked)} of {self.count}; "
            f"errors: {self.errors.most_common(5)}\nits log (tail):\n{self.log()[-6000:]}"
        )
        return self.acked


@pytest.fixture
def verifiable_producer(tmp_path):
    """Starts Kafka's VerifiableProducer (see the class); stopped when the test ends."""
    started = []

    def start(*args, **kwargs):
        started.append(VerifiableProducer(tmp_path, *args, **kwargs))
        return started[-1]

    yield start
    for producer in started:
        producer.stop()


def test_acks_all_from_three_clients_while_leaders_change(cluster, verifiable_producer):
    topic = unique("acks-all")
    cluster.create_topic(topic, partitions=3, rf=3, config={"min.insync.replicas": "2"})
    librdkafka = BackgroundProducer(cluster.bootstrap, topic, prefix="rd")
    java = verifiable_producer(cluster.bootstrap, topic, count=3000, rate=300)
    python = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", retries=10,
                           max_in_flight_requests_per_connection=1)
    python_acked = {}
    librdkafka.wait_acked(200)
    # Kill the leader of partition 0, then the controller, while everyone produces.
    _, _, partitions = cluster.metadata(topic)
    victim = partitions[0][0]
    cluster.kill(victim)
    for i in range(100):
        md = python.send(topic, key=f"py-{i}".encode(), value=f"py-{i}".encode()).get(timeout=60)
        python_acked[(md.partition, md.offset)] = f"py-{i}".encode()
    cluster.wait_partition(topic, lambda ps: all(p[0] not in (victim, -1) for p in ps.values()),
                           what=f"leaders moved off broker {victim}")
    cluster.start(victim)
    cluster.wait_ready(list(range(1, 4)))
    controller = cluster.controller()
    cluster.kill(controller)
    for i in range(100, 200):
        md = python.send(topic, key=f"py-{i}".encode(), value=f"py-{i}".encode()).get(timeout=60)
        python_acked[(md.partition, md.offset)] = f"py-{i}".encode()
    cluster.start(controller)
    cluster.wait_ready(list(range(1, 4)))
    python.close()
    java_acked = java.finish()
    rd_acked = librdkafka.stop()
    assert not librdkafka.errors, librdkafka.errors[:5]
    records = consume_all(cluster.bootstrap, topic)
    check_acknowledged(rd_acked, records)
    check_acknowledged(java_acked, records)
    # kafka-python without idempotence may write a retried record twice; what it was
    # told is acknowledged must still be where it was told.
    check_acknowledged(python_acked, records, exactly_once=False)
    # The cluster healed: every replica back in every ISR.
    cluster.wait_partition(topic, lambda ps: all(len(p[2]) == 3 for p in ps.values()),
                           what="all replicas back in sync")


def test_acks_all_is_refused_below_min_insync_replicas(cluster):
    topic = unique("min-isr")
    cluster.create_topic(topic, partitions=1, rf=3, config={"min.insync.replicas": "2"})
    _, _, partitions = cluster.metadata(topic)
    leader = partitions[0][0]
    followers = [b for b in partitions[0][1] if b != leader]
    for f in followers:
        cluster.kill(f)
    cluster.wait_partition(topic, lambda ps: ps[0][2] == [leader], timeout=90,
                           what="ISR shrunk to the leader")
    strict = Producer({"bootstrap.servers": cluster.addr(leader), "acks": "all",
                       "message.timeout.ms": 3000, "retries": 0})
    errors = []
    strict.produce(topic, value=b"refused", on_delivery=lambda err, msg: errors.append(err))
    strict.flush(30)
    assert errors and errors[0] is not None
    assert errors[0].code() in (KafkaError.NOT_ENOUGH_REPLICAS, KafkaError._MSG_TIMED_OUT), errors[0]
    # acks=1 still works, but its record stays invisible until the ISR recovers (the
    # high watermark does not move below min.insync.replicas).
    loose = Producer({"bootstrap.servers": cluster.addr(leader), "acks": 1})
    loose.produce(topic, value=b"acks-1")
    assert loose.flush(30) == 0
    for f in followers:
        cluster.start(f)
    cluster.wait_partition(topic, lambda ps: len(ps[0][2]) == 3, what="ISR back to three")
    records = consume_all(cluster.bootstrap, topic)
    assert b"acks-1" in records.values()
    assert b"refused" not in records.values()


def test_controlled_shutdown_moves_every_leadership_before_exit(cluster):
    topic = unique("controlled")
    cluster.create_topic(topic, partitions=6, rf=3)
    _, _, partitions = cluster.metadata(topic)
    victim = partitions[0][0]
    led = [p for p, (leader, _, _) in partitions.items() if leader == victim]
    assert led
    producer = BackgroundProducer(cluster.bootstrap, topic, prefix="cs")
    producer.wait_acked(100)
    cluster.stop(victim)
    log = cluster.log(victim)
    assert "controlled shutdown: every leadership moved" in log, log[-3000:]
    # The brokers left learn of the new leaders from the controller's UpdateMetadata
    # (the leaderships moved before the broker exited; the log says so).
    cluster.wait_partition(
        topic,
        lambda ps: all(leader != victim and victim not in isr for leader, _, isr in ps.values()),
        timeout=15,
        what=f"no partition led by or in sync on broker {victim}",
    )
    producer.wait_acked(len(producer.acked) + 100)
    cluster.start(victim)
    cluster.wait_ready(list(range(1, 4)))
    acked = producer.stop()
    assert not producer.errors, producer.errors[:5]
    check_acknowledged(acked, consume_all(cluster.bootstrap, topic))


def test_a_killed_leader_is_replaced_before_its_session_expires(cluster):
    """A broker process that dies on a live host refuses connections at once: the
    controller moves its leaderships without waiting for its ZooKeeper session (6 s
    here) to expire — its registration is still there when the new leader is. The victim
    is not the controller: a dead controller is replaced only when its session expires,
    in Kafka as here."""
    from kazoo.client import KazooClient

    topic = unique("crashed")
    controller = cluster.controller()
    victim = next(i for i in (1, 2, 3) if i != controller)
    others = [i for i in (1, 2, 3) if i != victim]
    cluster.create_topic(topic, assignment=[[victim] + others])
    _, _, partitions = cluster.metadata(topic)
    assert partitions[0][0] == victim, partitions
    zk = KazooClient(hosts=cluster.ensemble.hosts(), timeout=10)
    zk.start(timeout=30)
    try:
        cluster.kill(victim)
        last = cluster.wait_partition(
            topic,
            lambda ps: ps[0][0] not in (victim, -1) and victim not in ps[0][2],
            what=f"a new leader in place of killed broker {victim}",
        )
        still_registered = zk.exists(f"{cluster.chroot}/brokers/ids/{victim}") is not None
        assert still_registered, f"the session of broker {victim} had expired first: {last}"
    finally:
        zk.stop()
    cluster.start(victim)
    cluster.wait_partition(topic, lambda ps: len(ps[0][2]) == 3, what="the restarted broker back in the ISR")


def test_preferred_leader_election_with_kafkas_tool(cluster, verifiable_producer):
    topic = unique("preferred")
    cluster.create_topic(topic, partitions=3, rf=3)
    _, _, partitions = cluster.metadata(topic)
    victim = partitions[1][1][0]  # preferred leader of partition 1
    cluster.stop(victim)
    cluster.start(victim)
    cluster.wait_partition(topic, lambda ps: all(len(p[2]) == 3 for p in ps.values()),
                           what="the restarted broker back in every ISR")
    _, _, before = cluster.metadata(topic)
    assert before[1][0] != victim, "leadership stayed away from the restarted broker"
    # Kafka's producer writes to every partition while leadership moves under it.
    java = verifiable_producer(cluster.bootstrap, topic, count=1200, rate=100,
                               config="partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner\n")
    java.wait_acked(100)
    out = kafka_tool(
        "org.apache.kafka.tools.LeaderElectionCommand",
        "--bootstrap-server", cluster.bootstrap,
        "--election-type", "PREFERRED", "--topic", topic, "--partition", "1",
    )
    assert "Successfully completed leader election" in out.stdout, out.stdout + out.stderr
    cluster.wait_partition(topic, lambda ps: ps[1][0] == ps[1][1][0], what="the preferred replica leads")
    java.finish()
    # The old leader refused the producer's next batch and named the new leader in its
    # answer (KIP-951), which the producer read without asking for Metadata first.
    hinted = re.findall(
        rf"For {topic}-1, received error NOT_LEADER_OR_FOLLOWER, "
        r"with leaderIdAndEpoch LeaderIdAndEpoch\(leaderId=(-?\d+), leaderEpoch=(-?\d+)\)",
        java.log(),
    )
    assert hinted, java.log()[-6000:]
    # The old leader answers from its own replica state, which LeaderAndIsr changed
    # before UpdateMetadata reached its metadata cache.
    leader, epoch = hinted[-1]
    assert int(leader) == victim and int(epoch) > 0, hinted


def test_reassignment_with_kafkas_tool_while_producing(cluster, tmp_path):
    topic = unique("moved")
    # RF 2 wherever the controller puts it, moved to brokers 2 and 3 by the plan that
    # kafka-reassign-partitions --generate proposes.
    cluster.create_topic(topic, partitions=2, rf=2)
    producer = BackgroundProducer(cluster.bootstrap, topic, prefix="mv")
    producer.wait_acked(200)
    topics_file = tmp_path / "topics.json"
    topics_file.write_text(json.dumps({"version": 1, "topics": [{"topic": topic}]}))
    out = kafka_tool(
        "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
        "--bootstrap-server", cluster.bootstrap,
        "--topics-to-move-json-file", str(topics_file), "--broker-list", "2,3", "--generate",
    )
    proposed = out.stdout.split("Proposed partition reassignment configuration")[1].strip()
    plan = json.loads(proposed.splitlines()[0])
    assert sorted(p["partition"] for p in plan["partitions"]) == [0, 1], plan
    assert all(sorted(p["replicas"]) == [2, 3] for p in plan["partitions"]), plan
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    out = kafka_tool(
        "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
        "--bootstrap-server", cluster.bootstrap,
        "--reassignment-json-file", str(plan_file), "--execute",
    )
    assert "Successfully started partition reassignments" in out.stdout, out.stdout + out.stderr

    def verified():
        out = kafka_tool(
            "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
            "--bootstrap-server", cluster.bootstrap,
            "--reassignment-json-file", str(plan_file), "--verify", check=False,
        )
        return "is completed" in out.stdout and "is still in progress" not in out.stdout

    wait_for(verified, timeout=120, what="the reassignment to complete")
    cluster.wait_partition(topic, lambda ps: sorted(ps[0][1]) == [2, 3] and sorted(ps[1][1]) == [2, 3]
                           and all(sorted(p[2]) == [2, 3] for p in ps.values()),
                           what="replicas and ISRs on brokers 2 and 3")
    acked = producer.stop()
    assert not producer.errors, producer.errors[:5]
    check_acknowledged(acked, consume_all(cluster.bootstrap, topic))
    # Broker 1 deleted its replicas.
    data1 = cluster.root / "data1"
    wait_for(lambda: not any(d.name.startswith(f"{topic}-") and not d.name.endswith("-delete")
                             for d in data1.iterdir()),
             what="broker 1 to delete the moved replicas")


def reassign_tool(cluster, plan_file, action, *extra, check=True):
    return kafka_tool(
        "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
        "--bootstrap-server", cluster.bootstrap,
        "--reassignment-json-file", str(plan_file), action, *extra, check=check,
    )


def fill_topic_on_broker_1(cluster, topic, records, size, config=None):
    """An RF 1 topic on broker 1 holding `records` records of `size` bytes."""
    from confluent_kafka.admin import NewTopic

    admin = cluster.admin()
    # librdkafka: an explicit assignment goes with a partition count, not a replication
    # factor.
    new = NewTopic(topic, num_partitions=1, replica_assignment=[[1]], config=config or {})
    admin.create_topics([new])[topic].result(60)
    cluster.wait_partition(topic, lambda ps: ps[0][0] == 1, what=f"{topic} led by broker 1")
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 20})
    for i in range(records):
        producer.produce(topic, value=(b"%08d" % i) * (size // 8))
        producer.poll(0)
    assert producer.flush(60) == 0


def throttles(cluster, topic):
    """The throttle configs set on `topic` and on every broker, as DescribeConfigs shows
    them (a broker shows the rates it applies): {(resource, key): value}."""
    from confluent_kafka.admin import ConfigResource

    admin = cluster.admin()
    out = {}
    # librdkafka takes one BROKER resource per call.
    for requested in [ConfigResource("TOPIC", topic)] + [
        ConfigResource("BROKER", str(b)) for b in cluster.ids
    ]:
        for resource, future in admin.describe_configs([requested]).items():
            for key, entry in future.result(30).items():
                if "throttled" in key and entry.value not in (None, ""):
                    out[(resource.name, key)] = entry.value
    return out


def replica_bytes(cluster, broker, topic):
    return sum(f.stat().st_size for f in (cluster.root / f"data{broker}" / f"{topic}-0").glob("*.log"))


def test_throttled_reassignment_moves_at_its_rate(cluster, tmp_path):
    """kafka-reassign-partitions --throttle holds the copy to the rate, and --verify
    clears the throttles when the move is done.

    The rate is measured as Kafka measures it: over eleven one-second windows, never
    over less than ten seconds. A fresh throttle therefore lets about eleven seconds'
    worth through at once, and then holds the copy until that window ages out: the
    copy moves in steps, and only what lies beyond the first eleven seconds' worth is
    spread out at the rate."""
    topic = unique("throttled")
    rate = 100_000
    size = 2_500_000
    fill_topic_on_broker_1(cluster, topic, size // 1000, 1000)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": [2]}]}))
    started = time.monotonic()
    out = reassign_tool(cluster, plan, "--execute", "--throttle", str(rate))
    assert f"The inter-broker throttle limit was set to {rate} B/s" in out.stdout, out.stdout
    set_throttles = throttles(cluster, topic)
    assert set_throttles[(topic, "leader.replication.throttled.replicas")] == "0:1"
    assert set_throttles[(topic, "follower.replication.throttled.replicas")] == "0:2"
    assert set_throttles[("1", "leader.replication.throttled.rate")] == str(rate)
    assert set_throttles[("2", "follower.replication.throttled.rate")] == str(rate)
    wait_for(lambda: "is completed" in reassign_tool(cluster, plan, "--verify", check=False).stdout,
             timeout=180, what="the throttled reassignment to complete")
    elapsed = time.monotonic() - started
    spread = size - 11 * rate
    print(f"throttled reassignment of {size} bytes at {rate} B/s took {elapsed:.1f}s; "
          f"{spread} bytes beyond the first windows at {spread / elapsed:.0f} B/s")
    # Unthrottled the copy takes well under a second.
    assert elapsed >= 0.7 * spread / rate, f"took {elapsed:.1f}s: faster than {rate} B/s"
    assert elapsed <= 3 * spread / rate + 20, f"took {elapsed:.1f}s: far slower than {rate} B/s"
    # --verify removed every throttle it had set.
    wait_for(lambda: throttles(cluster, topic) == {}, what="the throttles cleared")
    cluster.wait_partition(topic, lambda ps: ps[0][1] == [2] and ps[0][2] == [2],
                           what="the partition on broker 2 only")


def test_cancelled_reassignment_goes_back(cluster, tmp_path):
    """kafka-reassign-partitions --cancel while a (slowly throttled) copy is in progress:
    the replica set returns to the original, the new replica is deleted and the
    throttles are cleared."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    topic = unique("cancelled")
    # Throttled from the start, at 1 KB/s on every broker, so that the copy is still
    # running when it is cancelled.
    fill_topic_on_broker_1(cluster, topic, 2000, 1000, config={
        "leader.replication.throttled.replicas": "*",
        "follower.replication.throttled.replicas": "*",
    })
    admin = cluster.admin()
    for b in cluster.ids:
        rates = ConfigResource("BROKER", str(b), incremental_configs=[
            ConfigEntry(key, "1000", incremental_operation=AlterConfigOpType.SET)
            for key in ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
        ])
        admin.incremental_alter_configs([rates])[rates].result(30)
    wait_for(lambda: len(throttles(cluster, topic)) == 2 + 2 * len(cluster.ids),
             what="every broker applying the throttle rates")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": [1, 3]}]}))
    reassign_tool(cluster, plan, "--execute")

    def listed():
        return kafka_tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
                          "--bootstrap-server", cluster.bootstrap, "--list").stdout

    out = listed()
    assert f"{topic}-0: replicas: 1,3. adding: 3." in out, out
    wait_for(lambda: replica_bytes(cluster, 3, topic) > 0, what="broker 3 starting its copy")
    out = reassign_tool(cluster, plan, "--cancel")
    assert f"Successfully cancelled partition reassignment for: {topic}-0" in out.stdout, out.stdout
    cluster.wait_partition(topic, lambda ps: ps[0][1] == [1] and ps[0][2] == [1],
                           what="the partition back on broker 1 alone")
    assert "No partition reassignments found." in listed()
    data3 = cluster.root / "data3"
    wait_for(lambda: not (data3 / f"{topic}-0").exists(),
             what="broker 3 to delete the replica it had started to copy")
    wait_for(lambda: throttles(cluster, topic) == {}, what="the throttles cleared")


def test_group_keeps_its_offsets_when_its_coordinator_dies(cluster):
    from confluent_kafka import Consumer

    topic = unique("grouped")
    group = unique("group")
    cluster.create_topic(topic, partitions=3, rf=3)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(300):
        producer.produce(topic, value=f"g-{i}".encode())
    assert producer.flush(60) == 0

    def consume(n):
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([topic])
        seen = []
        deadline = time.time() + 90
        while len(seen) < n and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            seen.append(msg.value())
            consumer.commit(msg, asynchronous=False)
        consumer.close()
        return seen

    first = consume(150)
    assert len(first) == 150
    # The coordinator is the leader of the group's __consumer_offsets partition.
    coordinator_partition = abs(java_hash(group)) % 6
    _, _, offsets = cluster.metadata("__consumer_offsets")
    coordinator = offsets[coordinator_partition][0]
    cluster.kill(coordinator)
    rest = consume(150)
    assert len(rest) == 150, f"read {len(rest)} after the coordinator moved"
    assert set(first).isdisjoint(rest), "committed offsets were lost: records read twice"
    assert {v.decode() for v in first + rest} == {f"g-{i}" for i in range(300)}


def java_hash(s):
    h = 0
    for c in s:
        h = (31 * h + ord(c)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


class TransactionalCopier:
    """Kafka's own `TransactionalMessageCopier` — the tool of Kafka's transactions system
    test — copying one input partition to the output topic in transactions of
    `transaction_size` records, committing its consumer offsets in each, aborting some at
    random. Killed and started again, it resumes from its group's committed offsets."""

    def __init__(self, tmp_path, bootstrap, input_topic, partition, output_topic, transaction_size=100):
        self.partition = partition
        self.args = [
            "--broker-list", bootstrap, "--input-topic", input_topic,
            "--input-partition", str(partition), "--output-topic", output_topic,
            "--transactional-id", f"{input_topic}-copier-{partition}",
            "--consumer-group", f"{input_topic}-copier-{partition}",
            "--transaction-size", str(transaction_size), "--transaction-timeout", "20000",
            "--max-messages", "-1", "--enable-random-aborts", "--use-group-metadata",
        ]
        self.log_path = tmp_path / f"copier-{partition}.log"
        self.proc = None
        self.start()

    def start(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            ["bash", str(KAFKA_CLASS), "org.apache.kafka.tools.TransactionalMessageCopier", *self.args],
            stdout=log, stderr=subprocess.STDOUT,
        )

    def processed(self):
        """Records this run of the copier has committed so far (from its status lines)."""
        total = 0
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"totalProcessed"' in line:
                try:
                    total = json.loads(line)["totalProcessed"]
                except ValueError:
                    pass
        return total

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log(self):
        return self.log_path.read_text(errors="replace")


def read_to_end(bootstrap, topic, partitions, isolation, timeout=120):
    """Every value of `topic` a consumer with `isolation` reads from the beginning until
    each partition reports its end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time_ns()}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": isolation})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    values, at_end = [], set()
    deadline = time.time() + timeout
    try:
        while len(at_end) < partitions:
            assert time.time() < deadline, f"reading {topic}: only partitions {sorted(at_end)} reached their end"
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error() is None:
                    values.append(m.value().decode())
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
        return values
    finally:
        consumer.close()


def test_kafkas_transactional_copier_copies_exactly_once_through_kills(cluster, tmp_path):
    """Kafka's transactions system test in small: two copiers (one per input partition)
    copy in transactions, some aborted at random; one copier is killed and restarted, and
    a broker is killed and restarted, while they run. A read_committed reader then finds
    every input record exactly once in the output."""
    source, sink = unique("txn-in"), unique("txn-out")
    for topic in (source, sink):
        cluster.create_topic(topic, partitions=2, rf=3, config={"min.insync.replicas": "2"})
    per_partition = 3000
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    for p in range(2):
        for i in range(per_partition):
            producer.produce(source, value=f"{p}-{i}", partition=p)
    assert producer.flush(60) == 0

    copiers = [TransactionalCopier(tmp_path, cluster.bootstrap, source, p, sink) for p in range(2)]
    try:
        wait_for(lambda: copiers[0].processed() >= 500, timeout=120,
                 what=lambda: f"the first copier to commit 500 records:\n{copiers[0].log()[-3000:]}")
        copiers[0].kill()
        copiers[0].start()
        victim = next(b for b in cluster.ids if b != cluster.controller())
        wait_for(lambda: copiers[1].processed() >= 1000, timeout=120,
                 what=lambda: f"the second copier to commit 1000 records:\n{copiers[1].log()[-3000:]}")
        cluster.kill(victim)
        time.sleep(3)
        cluster.start(victim)
        for copier in copiers:
            try:
                code = copier.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"copier {copier.partition} did not finish:\n{copier.log()[-4000:]}")
            assert code == 0, f"copier {copier.partition} failed:\n{copier.log()[-4000:]}"
    finally:
        for copier in copiers:
            copier.kill()

    committed = read_to_end(cluster.bootstrap, sink, 2, "read_committed")
    expected = [f"{p}-{i}" for p in range(2) for i in range(per_partition)]
    duplicates = [v for v, n in collections.Counter(committed).items() if n > 1]
    assert not duplicates, f"{len(duplicates)} records copied more than once, e.g. {duplicates[:5]}"
    assert sorted(committed) == sorted(expected), (
        f"{len(committed)} records committed, {len(set(expected) - set(committed))} missing")
    # Aborted copies are in the log, and only read_committed readers skip them.
    everything = read_to_end(cluster.bootstrap, sink, 2, "read_uncommitted")
    assert len(everything) >= len(committed)
