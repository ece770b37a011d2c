"""A cluster of strata-broker processes on 127.0.0.1..n for the replication tests.

Broker N listens on 127.0.0.N (one port number shared by all, as on separate hosts) and
keeps its metadata in a ZooKeeper ensemble from zk_support: strata-coordinator, or
Apache ZooKeeper for the same run on the real thing. Brokers can be killed (SIGKILL),
stopped (SIGTERM, a controlled shutdown), paused (SIGSTOP) and resumed, and restarted
on their data.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from strata_broker import BIN_DIR, free_port
from waiting import wait_for


class StrataCluster:
    """Brokers `ids` (1..n by default); `port` is shared with other brokers of the same
    cluster that are not Strata (a mixed cluster), `wait` whether to wait until every
    broker is described by every other."""

    def __init__(self, root, ensemble, n=3, extra=None, chroot="/strata", ids=None, port=None, wait=True):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.ensemble = ensemble
        self.ids = list(ids or range(1, n + 1))
        self.n = len(self.ids)
        self.port = port or free_port()
        self.metrics_port = free_port()
        self.extra = dict(extra or {})
        self.chroot = chroot
        self.procs = {}
        for i in self.ids:
            self.start(i)
        if wait:
            self.wait_ready()

    def host(self, i):
        return f"127.0.0.{i}"

    def addr(self, i):
        return f"{self.host(i)}:{self.port}"

    @property
    def bootstrap(self):
        return ",".join(self.addr(i) for i in self.ids)

    def log_path(self, i):
        return self.root / f"broker{i}.log"

    def log(self, i):
        try:
            return self.log_path(i).read_text(errors="replace")
        except OSError:
            return ""

    def config(self, i):
        props = {
            "broker.id": str(i),
            "listeners": f"PLAINTEXT://{self.host(i)}:{self.port}",
            "log.dirs": str(self.root / f"data{i}"),
            "zookeeper.connect": self.ensemble.hosts() + self.chroot,
            "zookeeper.session.timeout.ms": "6000",
            "metrics.port": str(self.metrics_port),
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.replication.factor": "3",
            "offsets.topic.num.partitions": "6",
            "default.replication.factor": "3",
            "min.insync.replicas": "2",
            "replica.lag.time.max.ms": "5000",
            "controlled.shutdown.retry.backoff.ms": "500",
        }
        # `{host}` in an extra value is this broker's address (per-broker listeners).
        props.update({k: v.replace("{host}", self.host(i)) for k, v in self.extra.items()})
        path = self.root / f"server{i}.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def start(self, i):
        binary = BIN_DIR / "strata-broker"
        log = open(self.log_path(i), "ab")
        self.procs[i] = subprocess.Popen(
            [str(binary), "--config", str(self.config(i))],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info"), "NO_COLOR": "1"},
        )

    def kill(self, i):
        """SIGKILL: the broker's ZooKeeper session lives on until it times out."""
        p = self.procs.pop(i, None)
        if p:
            p.kill()
            p.wait()

    def stop(self, i, timeout=60):
        """SIGTERM: a controlled shutdown, then exit."""
        p = self.procs.pop(i, None)
        if p:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError(f"broker {i} did not stop within {timeout}s:\n{self.log(i)[-4000:]}")

    def pause(self, i):
        self.procs[i].send_signal(signal.SIGSTOP)

    def resume(self, i):
        self.procs[i].send_signal(signal.SIGCONT)

    def running(self):
        return sorted(i for i, p in self.procs.items() if p.poll() is None)

    def admin(self, brokers=None):
        servers = ",".join(self.addr(i) for i in (brokers or self.running()))
        return AdminClient({"bootstrap.servers": servers, "socket.timeout.ms": 5000})

    def metadata(self, topic=None, via=None):
        """Cluster metadata as a broker sees it: (controller id, {broker ids},
        {partition: (leader, replicas, isr)})."""
        admin = self.admin([via] if via else None)
        md = admin.list_topics(topic=topic, timeout=10)
        partitions = {}
        if topic is not None and topic in md.topics:
            for p, pm in md.topics[topic].partitions.items():
                partitions[p] = (pm.leader, list(pm.replicas), list(pm.isrs))
        return md.controller_id, set(md.brokers), partitions

    def wait_ready(self, brokers=None, timeout=60):
        """Every running broker is registered and every broker's metadata lists them."""
        expected = set(brokers or self.running())
        seen = {}

        def ready():
            for i in expected:
                if self.procs[i].poll() is not None:
                    raise AssertionError(f"broker {i} exited:\n{self.log(i)[-4000:]}")
                try:
                    controller, live, _ = self.metadata(via=i)
                    seen[i] = f"controller {controller}, brokers {sorted(live)}"
                except Exception as e:
                    seen[i] = f"no metadata: {e}"
                    return False
                if live != expected:
                    return False
            return True

        def described():
            views = "; ".join(f"broker {i} sees {v}" for i, v in sorted(seen.items()))
            tails = "\n".join(f"--- broker {i}:\n{self.log(i)[-3000:]}" for i in sorted(expected))
            return f"brokers {sorted(expected)} registered and described; {views}\n{tails}"

        wait_for(ready, timeout=timeout, what=described)

    def wait_partition(self, topic, predicate, timeout=60, what="partition state"):
        """Waits until `predicate(partitions)` holds in the metadata of a running broker."""
        last = {}

        def check():
            nonlocal last
            try:
                _, _, last = self.metadata(topic)
            except Exception:
                return False
            return bool(last) and predicate(last)

        wait_for(check, timeout=timeout, what=lambda: f"{what}; last seen {last}")
        return last

    def create_topic(self, topic, partitions=3, rf=3, config=None, assignment=None):
        """Creates the topic and waits until every partition has a leader and a full ISR;
        `assignment` (a replica list per partition) overrides partitions and rf."""
        from confluent_kafka.admin import NewTopic

        if assignment:
            partitions, rf = len(assignment), len(assignment[0])
            new = NewTopic(topic, num_partitions=partitions, replica_assignment=assignment, config=config or {})
        else:
            new = NewTopic(topic, partitions, rf, config=config or {})
        admin = self.admin()  # kept alive until the future resolves
        futures = admin.create_topics([new], request_timeout=30)
        futures[topic].result(timeout=60)
        self.wait_partition(
            topic,
            lambda ps: len(ps) == partitions and all(p[0] >= 0 and len(p[2]) == rf for p in ps.values()),
            what=f"{topic} with {partitions} partitions fully replicated",
        )

    def controller(self):
        controller, _, _ = self.metadata()
        return controller

    def close(self):
        for i in list(self.procs):
            self.kill(i)


def consume_all(bootstrap, topic, timeout=60):
    """Every record of `topic` from the beginning to the end offsets seen now, as
    {(partition, offset): value}."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"checker-{time.time_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        md = consumer.list_topics(topic, timeout=10)
        partitions = sorted(md.topics[topic].partitions)
        ends = {}
        deadline = time.time() + timeout
        for p in partitions:
            # A leader elected a moment ago answers OFFSET_NOT_AVAILABLE until its high
            # watermark reaches its epoch's start (KIP-207): ask again, as clients do.
            while True:
                try:
                    _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    break
                except KafkaException as e:
                    again = e.args[0].code() == KafkaError.OFFSET_NOT_AVAILABLE or e.args[0].retriable()
                    if not again or time.time() > deadline:
                        raise
                    time.sleep(0.2)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records = {}
        done = {p for p in partitions if ends[p] == 0}
        deadline = time.time() + timeout
        while len(done) < len(partitions):
            if time.time() > deadline:
                missing = {p: ends[p] for p in partitions if p not in done}
                raise AssertionError(f"reading {topic}: partitions {missing} not read to their end")
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            records[(msg.partition(), msg.offset())] = msg.value()
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        return records
    finally:
        consumer.close()


def check_acknowledged(acked, records, exactly_once=True):
    """The checker: every acknowledged record is in the log at the offset it was
    acknowledged at; with an idempotent producer, exactly once. `acked` is
    {(partition, offset): value}."""
    lost = {k: v for k, v in acked.items() if records.get(k) != v}
    assert not lost, f"{len(lost)} acknowledged records lost or moved, e.g. {sorted(lost.items())[:5]}"
    if exactly_once:
        values = {}
        for key, value in records.items():
            values.setdefault(value, []).append(key)
        acked_values = set(acked.values())
        duplicated = {v: k for v, k in values.items() if len(k) > 1 and v in acked_values}
        assert not duplicated, f"acknowledged records stored twice: {list(duplicated.items())[:5]}"


class BackgroundProducer:
    """An idempotent acks=all librdkafka producer writing numbered values to `topic` from a
    thread until stopped; records what was acknowledged where."""

    def __init__(self, bootstrap, topic, prefix="v", rate=200, config=None):
        import threading

        from confluent_kafka import Producer

        self.topic = topic
        self.prefix = prefix
        self.acked = {}
        self.errors = []
        self.sent = 0
        self._stop = threading.Event()
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 120000,
                **(config or {}),
            }
        )
        self._interval = 1.0 / rate
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _delivered(self, err, msg):
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acked[(msg.partition(), msg.offset())] = msg.value()

    def _run(self):
        while not self._stop.is_set():
            value = f"{self.prefix}-{self.sent}".encode()
            try:
                self._producer.produce(self.topic, value=value, key=value, on_delivery=self._delivered)
                self.sent += 1
            except BufferError:
                pass
            self._producer.poll(self._interval)

    def wait_acked(self, n, timeout=120):
        wait_for(lambda: len(self.acked) >= n, timeout=timeout,
                 what=lambda: f"{n} acknowledgements (have {len(self.acked)}, errors {self.errors[-3:]})")

    def stop(self, timeout=120):
        self._stop.set()
        self._thread.join()
        remaining = self._producer.flush(timeout)
        assert remaining == 0, f"{remaining} records never acknowledged; errors {self.errors[-5:]}"
        return self.acked


class BackgroundTransactions:
    """A transactional librdkafka producer writing transactions of `size` numbered records
    across the partitions of `topic` from a thread until stopped, committing most and
    aborting some (seeded). Records each transaction's outcome as the client saw it:
    committed, aborted, or unknown (the producer failed fatally mid-way and was replaced;
    its successor's init fences it and ends the transaction either way)."""

    def __init__(self, bootstrap, topic, partitions, seed, prefix="t", size=20,
                 transaction_timeout_ms=10000):
        import random
        import threading

        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.prefix = prefix
        self.size = size
        self.transaction_timeout_ms = transaction_timeout_ms
        self.rng = random.Random(seed)
        self.outcomes = {}
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _producer(self):
        from confluent_kafka import KafkaException, Producer

        while not self._stop.is_set():
            producer = Producer({
                "bootstrap.servers": self.bootstrap,
                "transactional.id": f"{self.topic}-writer",
                "transaction.timeout.ms": self.transaction_timeout_ms,
                "linger.ms": 5,
            })
            try:
                producer.init_transactions(30)
                return producer
            except KafkaException as e:
                self.errors.append(f"init: {e.args[0]}")
                time.sleep(0.5)
        return None

    def _retrying(self, call):
        """Runs a commit or abort, again while the client says the error is retriable."""
        from confluent_kafka import KafkaException

        while True:
            try:
                return call(60)
            except KafkaException as e:
                if not e.args[0].retriable():
                    raise
                self.errors.append(f"retried: {e.args[0]}")

    def _run(self):
        from confluent_kafka import KafkaException

        producer = self._producer()
        n = 0
        while producer is not None and not self._stop.is_set():
            txn, n = n, n + 1
            outcome = "unknown"
            try:
                producer.begin_transaction()
                for i in range(self.size):
                    producer.produce(self.topic, value=f"{self.prefix}-{txn}-{i}".encode(),
                                     partition=i % self.partitions)
                if self.rng.random() < 0.25:
                    self._retrying(producer.abort_transaction)
                    outcome = "aborted"
                else:
                    self._retrying(producer.commit_transaction)
                    outcome = "committed"
            except KafkaException as e:
                error = e.args[0]
                self.errors.append(str(error))
                if error.txn_requires_abort():
                    try:
                        self._retrying(producer.abort_transaction)
                        outcome = "aborted"
                    except KafkaException as e2:
                        self.errors.append(f"abort: {e2.args[0]}")
                        producer = None
                else:
                    producer = None
                if producer is None:
                    producer = self._producer()
            self.outcomes[txn] = outcome

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.outcomes

    def count(self, outcome):
        return sum(1 for o in self.outcomes.values() if o == outcome)


def end_offsets(bootstrap, topic, partitions, isolation):
    """The end offsets a consumer with `isolation` is told, per partition."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "end-offsets",
                         "isolation.level": isolation})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
                for p in range(partitions)}
    finally:
        consumer.close()


def read_committed(bootstrap, topic, partitions, timeout=60):
    """Every record a read_committed consumer gets from the start of `topic` up to the
    last stable offsets seen now, as {(partition, offset): value}."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    ends = end_offsets(bootstrap, topic, partitions, "read_committed")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "read-committed",
                         "isolation.level": "read_committed", "enable.partition.eof": True,
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    records, done = {}, set()
    deadline = time.time() + timeout
    try:
        while len(done) < partitions:
            assert time.time() < deadline, f"reading {topic}: only partitions {done} read to {ends}"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF and msg.offset() >= ends[msg.partition()]:
                    done.add(msg.partition())
                continue
            records[(msg.partition(), msg.offset())] = msg.value().decode()
        return records
    finally:
        consumer.close()


def check_transactions(outcomes, records, prefix, size):
    """The transactions checker: in what a read_committed consumer reads, a committed
    transaction's records are all there exactly once, an aborted one's never, and one of
    unknown outcome is all there or not at all; nothing else is there."""
    from collections import Counter, defaultdict

    counts = Counter(records.values())
    duplicated = [v for v, c in counts.items() if c > 1]
    assert not duplicated, f"records read twice: {duplicated[:5]}"
    seen = defaultdict(set)
    for value in counts:
        p, txn, i = value.rsplit("-", 2)
        assert p == prefix, value
        seen[int(txn)].add(int(i))
    everything = set(range(size))
    for txn, outcome in outcomes.items():
        got = seen.pop(txn, set())
        if outcome == "committed":
            assert got == everything, f"committed transaction {txn}: read {sorted(got)}"
        elif outcome == "aborted":
            assert not got, f"aborted transaction {txn}: read {sorted(got)}"
        else:
            assert got in (set(), everything), f"transaction {txn} of unknown outcome read in part: {sorted(got)}"
    assert not seen, f"records of transactions never run: {sorted(seen)[:5]}"
