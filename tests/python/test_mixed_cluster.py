"""One Apache Kafka 3.9.1 broker (ZooKeeper mode) and two strata-brokers in one cluster,
on a three-server strata-coordinator ensemble.

Broker 1 is Kafka, started first so that it is the controller; brokers 2 and 3 are
Strata. An RF 3 topic (min.insync.replicas 2) replicates across both kinds while an
idempotent acks=all producer runs the whole time, through:

- a Strata leader SIGKILLed and restarted, under the Kafka controller;
- a Strata broker's controlled shutdown (SIGTERM) through the Kafka controller;
- the Kafka broker — controller and leader — SIGKILLed: a Strata broker takes over as
  controller and the Kafka broker, restarted, follows it;
- Kafka 3.9's kafka-leader-election through the Strata controller, and the Kafka broker
  as a leader changing its ISR through AlterPartition to the Strata controller;
- the Kafka broker's controlled shutdown through the Strata controller;
- a reassignment with Kafka 3.9's kafka-reassign-partitions that drops the Kafka replica
  (StopReplica with deletion to Kafka) and adds it back (Kafka replicates the partition
  from scratch from a Strata leader);
- a topic created and deleted through the Strata controller;
- the Strata controller SIGKILLed.

Before the faults, transactions cross the two kinds: transactional producers whose
coordinators are the Kafka broker and each Strata broker write to partitions led by both
(leaders verifying each first write with the other kind's coordinator, KIP-890, and
coordinators writing markers to the other kind's leaders), committing and aborting; a
read_committed consumer sees exactly the committed records.

Afterwards every acknowledged record is in the log exactly once at its offset, and every
replica of every partition — Kafka's and Strata's — holds the same bytes.
"""

import hashlib
import json
import os
import re
import subprocess
import time

from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

import kafka39
from strata_broker import metric
from strata_cluster import BackgroundProducer, StrataCluster, check_acknowledged, consume_all
from waiting import wait_for
from zk_support import REPO, Ensemble, free_port

CHROOT = "/mixed"
TOPIC = "mixed"
TXN_TOPIC = "mixed-tx"
# Fewer than the default 50 __transaction_state partitions: the same on both kinds (the
# partition of a transactional id depends on it), and less to create on two cores.
TXN_LOG_PARTITIONS = 6
ALL = [1, 2, 3]
# Kafka's own waits (JVM start, session timeouts) on a loaded two-core machine.
WAIT = 120

# What Kafka logs when something a peer sent it is wrong: anything at ERROR (a broker it
# cannot follow, a request it failed to handle), or a request, response or batch it could
# not parse. (Lost connections to killed brokers are WARNs.)
KAFKA_TROUBLE = re.compile(
    r"\] ERROR |UnsupportedVersionException|SchemaException|CorruptRecordException|"
    r"InvalidRecordException|UnknownServerException"
)
# Kafka's controller stops its request thread for a broker that left (here: a Strata broker
# that finished its controlled shutdown) by interrupting it; if the thread was backing off
# after the lost connection, Kafka's ControllerChannelManager logs the interrupt at ERROR.
# Apache Kafka brokers leaving a Kafka controller produce the same entry; it says nothing
# about what a Strata broker sent.
KAFKA_BENIGN = re.compile(
    r"ERROR \[RequestSendThread controllerId=\d+\] Controller \d+ fails to send a request "
    r"to broker .*\n(java\.lang\.InterruptedException|\tat )"
)


def kafka_trouble(log):
    """The entries of Kafka's log (a line starting with `[` and its stack trace) that
    KAFKA_TROUBLE matches, except the benign one above."""
    entries = re.split(r"\n(?=\[)", log)
    return [e for e in entries if KAFKA_TROUBLE.search(e) and not KAFKA_BENIGN.search(e)]


def kafka_tool(cls, *args, check=True):
    out = subprocess.run(
        ["bash", str(REPO / "tools" / "kafka-class.sh"), cls, *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={**os.environ, "KAFKA_VERSION": kafka39.KAFKA_VERSION},
    )
    if check and out.returncode != 0:
        raise AssertionError(f"{cls} {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


class Mixed:
    """Kafka broker 1 and Strata brokers 2 and 3 sharing one port number on 127.0.0.1-3."""

    def __init__(self, root, ensemble):
        self.root = root
        self.ensemble = ensemble
        self.port = free_port()
        self.kafka = kafka39.Broker(root, 1, self.port, ensemble.hosts() + CHROOT,
                                    extra=f"transaction.state.log.num.partitions={TXN_LOG_PARTITIONS}\n")
        self.strata = None
        self.zk = KazooClient(hosts=ensemble.hosts(), timeout=10)
        self.zk.start(timeout=30)

    @property
    def bootstrap(self):
        return ",".join(f"127.0.0.{i}:{self.port}" for i in ALL)

    def start_strata(self):
        self.strata = StrataCluster(
            self.root / "strata",
            self.ensemble,
            ids=[2, 3],
            port=self.port,
            chroot=CHROOT,
            wait=False,
            # As the Kafka broker is configured (kafka39.Broker): a Metadata request for
            # the topic before it is created must not create it.
            extra={"num.partitions": "3", "auto.create.topics.enable": "false",
                   "transaction.state.log.num.partitions": str(TXN_LOG_PARTITIONS)},
        )

    def running(self):
        up = set(self.strata.running()) if self.strata else set()
        if self.kafka.proc is not None and self.kafka.proc.poll() is None:
            up.add(1)
        return up

    def controller(self):
        try:
            data, _ = self.zk.retry(self.zk.get, f"{CHROOT}/controller")
        except NoNodeError:
            return None
        return json.loads(data)["brokerid"]

    def registered(self):
        try:
            return {int(b) for b in self.zk.retry(self.zk.get_children, f"{CHROOT}/brokers/ids")}
        except NoNodeError:
            return set()

    def describe(self, via):
        admin = AdminClient({"bootstrap.servers": f"127.0.0.{via}:{self.port}", "socket.timeout.ms": 5000})
        md = admin.list_topics(topic=TOPIC, timeout=10)
        partitions = {}
        if TOPIC in md.topics and not md.topics[TOPIC].error:
            for p, pm in md.topics[TOPIC].partitions.items():
                partitions[p] = (pm.leader, list(pm.replicas), sorted(pm.isrs))
        return md.controller_id, set(md.brokers), partitions

    def wait_in_sync(self, what):
        """Every running broker registered, described by every running broker, and in
        every ISR; every partition led."""
        last = {}

        def in_sync():
            up = self.running()
            if self.registered() != up:
                return False
            for via in up:
                try:
                    controller, live, partitions = self.describe(via)
                except Exception as e:
                    last[via] = repr(e)
                    return False
                last[via] = (controller, live, partitions)
                if live != up or len(partitions) != 3:
                    return False
                for leader, replicas, isr in partitions.values():
                    if leader not in up or isr != sorted(r for r in replicas if r in up):
                        return False
            return True

        wait_for(in_sync, timeout=WAIT, what=lambda: f"{what}; last seen {last}")

    def leaders(self):
        _, _, partitions = self.describe(next(iter(self.running())))
        return {p: leader for p, (leader, _, _) in partitions.items()}

    def close(self):
        self.zk.stop()
        if self.strata:
            self.strata.close()
        self.kafka.kill()


def java_string_hash(s):
    h = 0
    for c in s.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(c)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def transaction_log_partition(transactional_id):
    """Kafka's `partitionFor`: Utils.abs(hashCode) modulo the partition count."""
    h = java_string_hash(transactional_id)
    return (0 if h == -(1 << 31) else abs(h)) % TXN_LOG_PARTITIONS


def transactions_across_both_kinds(mixed):
    """Transactional producers coordinated by each broker write to partitions led by
    every broker; returns the coordinators used."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

    admin = AdminClient({"bootstrap.servers": mixed.bootstrap})
    admin.create_topics([NewTopic(TXN_TOPIC, 3, 3, config={"min.insync.replicas": "2"})])[TXN_TOPIC].result(60)
    wait_for(lambda: all(p.leader in ALL for p in
                         admin.list_topics(TXN_TOPIC, timeout=10).topics[TXN_TOPIC].partitions.values()),
             timeout=WAIT, what="the transactional topic led")
    # The first producer's FindCoordinator creates __transaction_state.
    first = Producer({"bootstrap.servers": mixed.bootstrap, "transactional.id": "mixed-tx-first"})
    first.init_transactions(WAIT)

    def txn_log_leaders():
        md = admin.list_topics("__transaction_state", timeout=10).topics.get("__transaction_state")
        if md is None or md.error or len(md.partitions) != TXN_LOG_PARTITIONS:
            return None
        leaders = {p: pm.leader for p, pm in md.partitions.items()}
        return leaders if all(l in ALL for l in leaders.values()) else None

    wait_for(txn_log_leaders, timeout=WAIT, what="__transaction_state led")
    leaders = txn_log_leaders()
    # One transactional id per coordinator, for each coordinator there is.
    by_coordinator = {}
    for i in range(1000):
        tid = f"mixed-tx-{i}"
        by_coordinator.setdefault(leaders[transaction_log_partition(tid)], tid)
    assert set(by_coordinator) == set(leaders.values()), (leaders, by_coordinator)
    expected = []
    for coordinator, tid in sorted(by_coordinator.items()):
        producer = Producer({"bootstrap.servers": mixed.bootstrap, "transactional.id": tid, "linger.ms": 5})
        producer.init_transactions(WAIT)
        for n, outcome in enumerate(["commit", "abort", "commit"]):
            producer.begin_transaction()
            for i in range(30):
                value = f"{tid}-{n}-{outcome}-{i}"
                producer.produce(TXN_TOPIC, value=value, partition=i % 3)
                if outcome == "commit":
                    expected.append(value)
            producer.flush(WAIT)
            if outcome == "commit":
                producer.commit_transaction(WAIT)
            else:
                producer.abort_transaction(WAIT)
        producer.flush(WAIT)
    first.flush(WAIT)

    consumer = Consumer({"bootstrap.servers": mixed.bootstrap, "group.id": "mixed-tx-reader",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    consumer.assign([TopicPartition(TXN_TOPIC, p, OFFSET_BEGINNING) for p in range(3)])
    seen = []
    deadline = time.time() + WAIT
    while time.time() < deadline and len(seen) < len(expected):
        seen += [m.value().decode() for m in consumer.consume(500, timeout=0.5) if m.error() is None]
    # A moment more: anything aborted or duplicated would arrive now.
    seen += [m.value().decode() for m in consumer.consume(500, timeout=2) if m.error() is None]
    consumer.close()
    assert sorted(seen) == sorted(expected), (len(seen), len(expected))
    # The Strata leaders verified first writes with their coordinators (KIP-890).
    verified = sum(metric(mixed.strata.metrics_port,
                          'strata_broker_transaction_verifications_total{result="verified"}',
                          host=f"127.0.0.{b}") or 0 for b in (2, 3))
    assert verified > 0
    return sorted(by_coordinator)


def segment_digest(partition_dir):
    """The bytes of a replica: its segments' contents in offset order."""
    digest = hashlib.sha256()
    for segment in sorted(partition_dir.glob("*.log")):
        digest.update(segment.read_bytes())
    return digest.hexdigest()


def test_kafka39_and_strata_brokers_in_one_cluster(tmp_path):
    ensemble = Ensemble(tmp_path / "zk", n=3, impl="strata")
    mixed = Mixed(tmp_path, ensemble)
    producer = None
    try:
        # Kafka first: it is the controller the Strata brokers join.
        mixed.kafka.start()
        wait_for(lambda: mixed.controller() == 1, timeout=WAIT, what="the Kafka broker elected controller")
        mixed.start_strata()
        wait_for(lambda: mixed.registered() == {1, 2, 3}, timeout=WAIT, what="all three brokers registered")

        def described_by_all():
            try:
                return all(mixed.describe(via)[:2] == (1, {1, 2, 3}) for via in ALL)
            except Exception:
                return False

        # A broker answers Metadata before the controller has described the cluster to
        # it (Kafka's do too); a client that asked then would wait for its next refresh.
        wait_for(described_by_all, timeout=WAIT, what="every broker describing the cluster")

        admin = AdminClient({"bootstrap.servers": mixed.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 3, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(60)
        mixed.wait_in_sync("the topic replicated on all three brokers")
        # Kafka's controller spreads leadership over both kinds.
        assert set(mixed.leaders().values()) == {1, 2, 3}, mixed.leaders()
        # Kafka's replica fetcher follows each Strata leader in an incremental fetch session
        # (KIP-227) that holds every partition it follows there. Normally that is the one
        # session; a first fetch that failed and was retried (a slow start on a loaded
        # machine) leaves the first session in the cache until another needs its slot, as
        # Kafka's cache does, so more sessions holding more partitions are accepted.
        for b in (2, 3):
            led = sum(1 for leader in mixed.leaders().values() if leader == b)

            def sessions_on(b=b):
                def sample(name):
                    return metric(mixed.strata.metrics_port, "kafka_server_fetchsessioncache_" + name,
                                  host=f"127.0.0.{b}")
                return (sample("numincrementalfetchsessions"), sample("numincrementalfetchpartitionscached"))

            def held(led=led, sessions_on=sessions_on):
                sessions, cached = sessions_on()
                return sessions >= 1 and cached >= led

            wait_for(held, timeout=WAIT,
                     what=lambda b=b, led=led, sessions_on=sessions_on:
                     f"the Kafka follower's fetch session on broker {b} ({led} partitions); "
                     f"(sessions, partitions cached) there: {sessions_on()}")

        coordinators = transactions_across_both_kinds(mixed)
        print(f"mixed cluster: transactions coordinated by brokers {coordinators}")

        producer = BackgroundProducer(mixed.bootstrap, TOPIC, prefix="m", rate=200)
        producer.wait_acked(300)

        # A Strata leader dies under the Kafka controller.
        victim = next(b for b in mixed.leaders().values() if b != 1)
        mixed.strata.kill(victim)
        wait_for(lambda: victim not in mixed.leaders().values(), timeout=WAIT,
                 what=f"leaders moved off killed broker {victim}")
        producer.wait_acked(len(producer.acked) + 200)
        mixed.strata.start(victim)
        mixed.wait_in_sync(f"Strata broker {victim} back in every ISR under the Kafka controller")

        # A Strata broker's controlled shutdown, through the Kafka controller.
        victim = 3
        mixed.strata.stop(victim)
        assert "controlled shutdown: every leadership moved" in mixed.strata.log(victim)
        producer.wait_acked(len(producer.acked) + 200)
        mixed.strata.start(victim)
        mixed.wait_in_sync("Strata broker 3 back after its controlled shutdown")
        assert mixed.controller() == 1

        # The Kafka broker — controller and a leader — dies: a Strata broker takes over.
        mixed.kafka.kill()
        wait_for(lambda: mixed.controller() in (2, 3), timeout=WAIT, what="a Strata broker elected controller")
        producer.wait_acked(len(producer.acked) + 200)
        mixed.kafka.start()
        mixed.wait_in_sync("the Kafka broker back in every ISR under a Strata controller")
        assert mixed.controller() in (2, 3)

        # Kafka 3.9's kafka-leader-election through the Strata controller gives the Kafka
        # broker back the partition it is the preferred replica of.
        out = kafka_tool("org.apache.kafka.tools.LeaderElectionCommand",
                         "--bootstrap-server", mixed.bootstrap,
                         "--election-type", "PREFERRED", "--all-topic-partitions", check=False)
        assert out.returncode == 0 or "election not needed" in out.stdout, out.stdout + out.stderr
        wait_for(lambda: all(leader == mixed.describe(1)[2][p][1][0] for p, leader in mixed.leaders().items()),
                 timeout=WAIT, what="every preferred replica leading")

        # The other Strata broker dies: the Kafka broker, as a leader, takes it out of its
        # ISR and back in through AlterPartition to the Strata controller.
        victim = next(b for b in (2, 3) if b != mixed.controller())
        mixed.strata.kill(victim)
        wait_for(lambda: all(victim not in isr for _, _, isr in mixed.describe(1)[2].values()),
                 timeout=WAIT, what=f"broker {victim} out of every ISR")
        producer.wait_acked(len(producer.acked) + 200)
        mixed.strata.start(victim)
        mixed.wait_in_sync(f"broker {victim} back in the Kafka leader's ISR")

        # The Kafka broker's controlled shutdown, through the Strata controller.
        mixed.kafka.stop()
        assert re.search(r"Controlled shutdown request returned successfully", mixed.kafka.log()), \
            mixed.kafka.log()[-3000:]
        producer.wait_acked(len(producer.acked) + 200)
        mixed.kafka.start()
        mixed.wait_in_sync("the Kafka broker back after its controlled shutdown")

        # Reassignment with Kafka 3.9's tool: partition 0 leaves the Kafka broker (which
        # deletes its replica) and comes back to it (which copies it from a Strata leader).
        plan = tmp_path / "plan.json"

        def reassign(replicas):
            plan.write_text(json.dumps({"version": 1, "partitions": [
                {"topic": TOPIC, "partition": 0, "replicas": replicas}]}))
            out = kafka_tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
                             "--bootstrap-server", mixed.bootstrap,
                             "--reassignment-json-file", str(plan), "--execute")
            assert "Successfully started partition reassignment" in out.stdout, out.stdout + out.stderr

            def done():
                out = kafka_tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
                                 "--bootstrap-server", mixed.bootstrap,
                                 "--reassignment-json-file", str(plan), "--verify", check=False)
                return "is completed" in out.stdout and "still in progress" not in out.stdout

            wait_for(done, timeout=WAIT, what=f"partition 0 reassigned to {replicas}")

        kafka_replica = mixed.kafka.dir / "data" / f"{TOPIC}-0"
        reassign([2, 3])
        wait_for(lambda: not kafka_replica.exists(), timeout=WAIT,
                 what="the Kafka broker to delete its replica of partition 0")
        reassign([2, 3, 1])
        mixed.wait_in_sync("partition 0 back on the Kafka broker")
        assert kafka_replica.exists()

        # A topic created and deleted through the Strata controller: the Kafka broker
        # hosts its replicas and then deletes them. (A new client: librdkafka's admin
        # client does not look for a new controller when told NOT_CONTROLLER.)
        admin = AdminClient({"bootstrap.servers": mixed.bootstrap})
        admin.create_topics([NewTopic("doomed", 2, 3)])["doomed"].result(60)
        doomed = [mixed.kafka.dir / "data" / f"doomed-{p}" for p in range(2)]
        wait_for(lambda: all(d.exists() for d in doomed), timeout=WAIT,
                 what="the Kafka broker hosting the new topic's replicas")
        admin.delete_topics(["doomed"])["doomed"].result(60)
        wait_for(lambda: not any(d.exists() for d in doomed), timeout=WAIT,
                 what="the Kafka broker deleting the topic's replicas")

        # The Strata controller dies.
        victim = mixed.controller()
        assert victim in (2, 3)
        mixed.strata.kill(victim)
        wait_for(lambda: mixed.controller() not in (None, victim), timeout=WAIT,
                 what="another controller elected")
        producer.wait_acked(len(producer.acked) + 200)
        mixed.strata.start(victim)
        mixed.wait_in_sync(f"broker {victim} back after the controller died")

        acked = producer.stop()
        producer = None
        records = consume_all(mixed.bootstrap, TOPIC)
        check_acknowledged(acked, records)

        # Every replica holds the same bytes, whichever kind of broker wrote them.
        dirs = {1: mixed.kafka.dir / "data", 2: mixed.strata.root / "data2", 3: mixed.strata.root / "data3"}
        digests = {}

        def replicas_identical():
            for p in range(3):
                digests[p] = {b: segment_digest(d / f"{TOPIC}-{p}") for b, d in dirs.items()}
                if len(set(digests[p].values())) != 1:
                    return False
            return True

        wait_for(replicas_identical, timeout=WAIT, what=lambda: f"identical replicas; digests {digests}")
        print(f"mixed cluster: {len(acked)} records acknowledged, {len(records)} stored, lost 0; "
              f"controller now {mixed.controller()}")

        trouble = kafka_trouble(mixed.kafka.log())
        assert not trouble, "Kafka logged trouble:\n" + "\n".join(trouble)[:5000]
    finally:
        if producer is not None:
            producer._stop.set()
        mixed.close()
        ensemble.close()
