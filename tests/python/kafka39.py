"""Apache Kafka 3.9 brokers in ZooKeeper mode for the coordinator tests.

The jars come from Maven Central through tools/setup-kafka.sh (cached under
$STRATA_CACHE/kafka/3.9.1). Broker N listens on 127.0.0.N and logs at INFO to its own
file, so a test can read what Kafka's ZooKeeper client went through.
"""

import os
import re
import subprocess
from pathlib import Path

from zk_support import REPO

KAFKA_VERSION = "3.9.1"


def kafka_home():
    cache = Path(os.environ.get("STRATA_CACHE", Path.home() / ".cache" / "strata"))
    home = cache / "kafka" / KAFKA_VERSION
    if not (home / "libs" / ".complete").exists():
        subprocess.run(
            ["bash", str(REPO / "tools" / "setup-kafka.sh"), KAFKA_VERSION], check=True
        )
    return home


def java_classes(out_dir, *sources):
    """Compile the Java test programs `sources` (in tests/java) against Kafka's jars."""
    libs = kafka_home() / "libs"
    subprocess.run(
        ["javac", "-d", str(out_dir), "-cp", f"{libs}/*"]
        + [str(REPO / "tests" / "java" / s) for s in sources],
        check=True,
    )
    return f"{libs}/*:{out_dir}"


LOG4J = """\
log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
# Request logs and the log cleaner say nothing about the ZooKeeper client.
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
"""


class Broker:
    def __init__(self, root, broker_id, port, zk_connect, extra=""):
        """`extra`: server.properties lines appended last (a repeated key wins)."""
        self.id = broker_id
        self.host = f"127.0.0.{broker_id}"
        self.port = port
        self.dir = Path(root) / f"kafka{broker_id}"
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        (self.dir / "log4j.properties").write_text(LOG4J)
        listener = f"PLAINTEXT://{self.host}:{port}"
        (self.dir / "server.properties").write_text(
            f"broker.id={broker_id}\n"
            f"listeners={listener}\nadvertised.listeners={listener}\n"
            f"log.dirs={self.dir / 'data'}\n"
            f"zookeeper.connect={zk_connect}\n"
            "zookeeper.session.timeout.ms=10000\n"
            "num.partitions=3\ndefault.replication.factor=3\nmin.insync.replicas=2\n"
            "offsets.topic.replication.factor=3\n"
            "transaction.state.log.replication.factor=3\ntransaction.state.log.min.isr=2\n"
            "group.initial.rebalance.delay.ms=0\nauto.create.topics.enable=false\n"
            "unclean.leader.election.enable=false\n"
            # Few threads: three brokers and an ensemble share two cores.
            "num.network.threads=2\nnum.io.threads=2\nbackground.threads=2\n"
            "num.replica.fetchers=1\nlog.cleaner.enable=false\n"
            + extra
        )
        self.proc = None

    @property
    def bootstrap(self):
        return f"{self.host}:{self.port}"

    def log_path(self):
        return self.dir / "server.log"

    def log(self):
        return self.log_path().read_text(errors="replace")

    def start(self):
        home = kafka_home()
        out = open(self.log_path(), "a")
        self.proc = subprocess.Popen(
            [
                "java",
                "-Xmx512m",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{self.dir / 'log4j.properties'}",
                "-cp",
                f"{home / 'libs'}/*",
                "kafka.Kafka",
                str(self.dir / "server.properties"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self, timeout=60):
        """SIGTERM: Kafka's controlled shutdown, then exit."""
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
                self.proc = None


# What Kafka's ZooKeeper client logs when things go wrong with the coordinator.
XID_OUT_OF_ORDER = re.compile(r"Xid out of order")
SESSION_ESTABLISHED = re.compile(r"Session establishment complete on server")
# The client's own words when the server refuses its session, and Kafka's when it
# learns of it. ("Attempting reconnect except it is a SessionExpiredException" is
# printed on every disconnect and says nothing about expiry.)
SESSION_EXPIRED = re.compile(r"session 0x[0-9a-f]+ has expired|Session expired\.")
KEEPER_EXCEPTION = re.compile(r"KeeperException\$(\w+)|KeeperErrorCode = (\w+)")


def zookeeper_client_report(logs):
    """Counts over the brokers' logs of what Kafka's ZooKeeper client went through."""
    text = "\n".join(logs)
    keeper = set()
    for m in KEEPER_EXCEPTION.finditer(text):
        keeper.add((m.group(1) or m.group(2)).removesuffix("Exception"))
    return {
        "xid out of order": len(XID_OUT_OF_ORDER.findall(text)),
        "sessions established": len(SESSION_ESTABLISHED.findall(text)),
        "session expiries": len(SESSION_EXPIRED.findall(text)),
        "keeper exceptions": keeper,
    }
