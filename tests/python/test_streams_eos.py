"""A Kafka Streams application with processing.guarantee=exactly_once_v2 (word count,
tests/java/WordCountEos.java, Kafka Streams from Maven Central) on three strata-brokers over
strata-coordinator: an instance of the application and a broker are SIGKILLed mid-run,
and the final counts are still exact."""

import collections
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer

from strata_cluster import StrataCluster
from waiting import wait_for
from zk_support import REPO, Ensemble

KAFKA_VERSION = "4.3.1"
VOCABULARY = [f"w{i}" for i in range(40)]


def streams_classpath(out_dir):
    cache = Path(os.environ.get("STRATA_CACHE", Path.home() / ".cache" / "strata"))
    streams = cache / "kafka-streams" / KAFKA_VERSION / "libs"
    kafka = cache / "kafka" / KAFKA_VERSION / "libs"
    if not (streams / ".complete").exists():
        subprocess.run(["bash", str(REPO / "tools" / "setup-kafka-streams.sh")], check=True)
    if not (kafka / ".complete").exists():
        subprocess.run(["bash", str(REPO / "tools" / "setup-kafka.sh")], check=True)
    # Streams' own jars first: the client jar of the same version is in both.
    classpath = f"{streams}/*:{kafka}/*"
    subprocess.run(["javac", "-d", str(out_dir), "-cp", classpath,
                    str(REPO / "tests" / "java" / "WordCountEos.java")], check=True)
    return f"{out_dir}:{classpath}"


class App:
    """One instance of the word-count application (a JVM), its output in a log file."""

    def __init__(self, root, name, classpath, bootstrap, app_id, source, sink):
        self.log_path = root / f"{name}.log"
        (root / name).mkdir(parents=True, exist_ok=True)
        log_config = root / "log4j2.properties"
        log_config.write_text(
            "appender.out.type = Console\nappender.out.name = OUT\n"
            "appender.out.layout.type = PatternLayout\nappender.out.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = warn\nrootLogger.appenderRef.out.ref = OUT\n"
        )
        self.proc = subprocess.Popen(
            ["java", "-Xmx384m", f"-Dlog4j2.configurationFile={log_config}", "-cp", classpath,
             "WordCountEos", bootstrap, app_id, source, sink, str(root / name)],
            stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
        )

    def log(self):
        return self.log_path.read_text(errors="replace")

    def running(self):
        return "STATE RUNNING" in self.log()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path):
    ensemble = Ensemble(tmp_path / "zk", n=3, impl="strata")
    cluster = StrataCluster(tmp_path / "brokers", ensemble)
    yield cluster
    cluster.close()
    ensemble.close()


def latest_counts(bootstrap, topic, partitions=3, timeout=60):
    """Each word's latest count as a read_committed consumer sees the output topic."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time_ns()}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    counts, at_end = {}, set()
    deadline = time.time() + timeout
    try:
        while len(at_end) < partitions and time.time() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error() is None:
                    counts[m.key().decode()] = int(m.value().decode())
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
        return counts
    finally:
        consumer.close()


def test_word_count_with_exactly_once_v2_survives_an_app_kill_and_a_broker_kill(cluster, tmp_path):
    classpath = streams_classpath(tmp_path / "classes")
    for topic in ("eos-lines", "eos-counts"):
        cluster.create_topic(topic, partitions=3, rf=3, config={"min.insync.replicas": "2"})
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    expected = collections.Counter()

    def produce(first, last):
        for i in range(first, last):
            words = [VOCABULARY[(i * k) % len(VOCABULARY)] for k in (1, 7, 13)]
            expected.update(words)
            producer.produce("eos-lines", key=str(i), value=" ".join(words))
        assert producer.flush(60) == 0

    produce(0, 2000)
    first = App(tmp_path, "app-1", classpath, cluster.bootstrap, "eos-word-count", "eos-lines", "eos-counts")
    second = None
    try:
        wait_for(first.running, timeout=180, what=lambda: f"the first instance to run:\n{first.log()[-3000:]}")
        wait_for(lambda: sum(latest_counts(cluster.bootstrap, "eos-counts", timeout=10).values()) > 0,
                 timeout=120, what="the first counts to be committed")
        # Mid-run: the instance dies with transactions open, another takes over; a broker
        # dies and comes back while more lines arrive.
        first.kill()
        second = App(tmp_path, "app-2", classpath, cluster.bootstrap, "eos-word-count", "eos-lines", "eos-counts")
        produce(2000, 3000)
        victim = next(b for b in cluster.ids if b != cluster.controller())
        cluster.kill(victim)
        produce(3000, 4000)
        time.sleep(3)
        cluster.start(victim)
        produce(4000, 5000)

        def exact():
            counts = latest_counts(cluster.bootstrap, "eos-counts", timeout=20)
            return counts == dict(expected), counts

        deadline = time.time() + 240
        while True:
            done, counts = exact()
            if done:
                break
            over = {w: (c, expected[w]) for w, c in counts.items() if c > expected[w]}
            assert not over, f"counted more than once: {over}"
            assert time.time() < deadline, (
                f"counts not exact after 240 s: {len(counts)} words, "
                f"{sum(counts.values())} of {sum(expected.values())} counted\n"
                f"second instance:\n{second.log()[-4000:]}")
            time.sleep(2)
    finally:
        first.kill()
        if second:
            second.kill()
