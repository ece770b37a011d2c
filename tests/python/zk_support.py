"""Start strata-coordinator servers for the kazoo tests, or Apache ZooKeeper servers
from the same zoo.cfg to compare with.

Server N of an ensemble listens on 127.0.0.N, each with its own data directory under a
pytest temporary directory. The binary comes from $STRATA_COORDINATOR_BIN, or is built
with cargo into $CARGO_TARGET_DIR (default: target/). Apache ZooKeeper's jars come from
tools/setup-zookeeper.sh (Maven Central, cached).
"""

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError
from kazoo.retry import KazooRetry

# Ports below Linux's ephemeral range, so no client's outgoing socket can hold one when
# a server binds it (a port from bind(0) can).
from strata_broker import free_port  # noqa: F401 - re-exported for the tests

REPO = Path(__file__).resolve().parents[2]


def coordinator_bin():
    explicit = os.environ.get("STRATA_COORDINATOR_BIN")
    if explicit:
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    subprocess.run(
        ["cargo", "build", "-q", "-p", "strata-coordinator"], cwd=REPO, check=True
    )
    return str(target / "debug" / "strata-coordinator")


def zookeeper_lib(what=()):
    """Apache ZooKeeper's jar directory, fetched on first use (Curator's with
    `what=("curator",)`)."""
    out = subprocess.run(
        ["bash", str(REPO / "tools" / "setup-zookeeper.sh"), *what],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def curator_lib():
    return zookeeper_lib(("curator",))


def four_letter(host, port, word, timeout=5.0):
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks).decode()
    except OSError:
        return ""


class Ensemble:
    """`n` servers on 127.0.0.1..n. `impl` is "strata" (strata-coordinator) or
    "zookeeper" (Apache ZooKeeper, for a side-by-side run on the same zoo.cfg)."""

    def __init__(self, root, n=3, extra="", tick_ms=200, impl="strata", client_in_server_lines=False):
        self.impl = impl
        if impl == "strata":
            self.command = [coordinator_bin(), "--config"]
        else:
            self.command = [
                "java",
                "-Xmx256m",
                "-Dzookeeper.admin.enableServer=false",
                # TTL nodes, and containers and TTL nodes checked every second rather
                # than every minute, as strata-coordinator does on every tick.
                "-Dzookeeper.extendedTypesEnabled=true",
                "-Dznode.container.checkIntervalMs=1000",
                "-cp",
                zookeeper_lib() + "/*",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ]
        self.root = Path(root)
        self.n = n
        self.client_port = free_port()
        quorum, election = free_port(), free_port()
        self.procs = {}
        # With client_in_server_lines each server learns where to serve clients from its
        # own `server.N=...;host:port` line (ZooKeeper 3.5+) instead of clientPort.
        self.client_in_server_lines = client_in_server_lines
        self.quorum_port, self.election_port = quorum, election
        self.tick_ms, self.extra = tick_ms, extra
        members = range(1, n + 1) if n > 1 else []
        for i in range(1, n + 1):
            self.write_config(i, members)
        for i in range(1, n + 1):
            self.start(i)
        for i in range(1, n + 1):
            self.wait_serving(i)

    def server_line(self, i, role=None):
        """`server.i=...` as zoo.cfg and `reconfig -add` write it."""
        client = f";127.0.0.{i}:{self.client_port}" if self.client_in_server_lines else ""
        role = f":{role}" if role else ""
        return f"server.{i}=127.0.0.{i}:{self.quorum_port}:{self.election_port}{role}{client}"

    def write_config(self, i, members):
        data = self.root / f"s{i}"
        data.mkdir(parents=True, exist_ok=True)
        (data / "myid").write_text(f"{i}\n")
        client_port = "" if self.client_in_server_lines else (
            f"clientPort={self.client_port}\nclientPortAddress=127.0.0.{i}\n"
        )
        servers = "".join(self.server_line(m) + "\n" for m in members)
        (self.root / f"zoo{i}.cfg").write_text(
            f"tickTime={self.tick_ms}\ninitLimit=10\nsyncLimit=5\ndataDir={data}\n"
            f"{client_port}4lw.commands.whitelist=*\n{self.extra}\n{servers}"
        )

    def add_server(self, i, members):
        """Start server `i` with a configuration naming `members` and itself, as a
        server about to join by `reconfig` is started."""
        self.write_config(i, sorted(set(members) | {i}))
        self.n = max(self.n, i)
        self.start(i)

    def host(self, i):
        return f"127.0.0.{i}"

    def addr(self, i):
        return f"127.0.0.{i}:{self.client_port}"

    def hosts(self):
        return ",".join(self.addr(i) for i in range(1, self.n + 1))

    def log(self, i):
        return (self.root / f"s{i}.log").read_text(errors="replace")

    def start(self, i):
        out = open(self.root / f"s{i}.log", "a")
        self.procs[i] = subprocess.Popen(
            [*self.command, str(self.root / f"zoo{i}.cfg")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": "info", "NO_COLOR": "1"},
        )

    def kill(self, i):
        p = self.procs.pop(i, None)
        if p:
            p.kill()
            p.wait()

    def mode(self, i):
        for line in four_letter(self.host(i), self.client_port, "srvr").splitlines():
            if line.startswith("Mode: "):
                return line[6:]
        return None

    def wait_serving(self, i, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if self.mode(i):
                return
            time.sleep(0.05)
        raise AssertionError(f"server {i} not serving:\n{self.log(i)}")

    def leader(self):
        for i in range(1, self.n + 1):
            if self.mode(i) == "leader":
                return i
        return None

    def wait_leader(self, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            i = self.leader()
            if i:
                return i
            time.sleep(0.05)
        raise AssertionError("no leader")

    def close(self):
        for i in list(self.procs):
            self.kill(i)


def retrying_client(hosts, timeout=6):
    retry = dict(max_tries=-1, delay=0.05, max_delay=0.5)
    return KazooClient(
        hosts=hosts,
        timeout=timeout,
        connection_retry=KazooRetry(**retry),
        command_retry=KazooRetry(**retry),
    )


class Writer:
    """Creates /load/k<n> in a loop; records every write the ensemble acknowledged."""

    def __init__(self, client):
        self.client = client
        self.acked = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        n = 0
        while not self.stop.is_set():
            path = f"/load/k{n}"
            try:
                self.client.retry(self.client.create, path, b"x" * 64)
                self.acked.append(path)
            except NodeExistsError:
                # A retry of a create that had in fact been applied.
                self.acked.append(path)
            n += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def children_on(ensemble, i):
    c = KazooClient(hosts=ensemble.addr(i), timeout=6)
    c.start(timeout=10)
    c.sync("/load")
    names = set("/load/" + n for n in c.get_children("/load"))
    c.stop()
    c.close()
    return names
