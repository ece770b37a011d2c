"""kazoo against a three-server strata-coordinator ensemble on 127.0.0.1-3.

Each test talks to more than one server, so reads are local, writes are forwarded to the
leader and `sync` is what makes a read see the latest. (kazoo 2.11 has no addWatch;
persistent and persistent-recursive watches are tested with the `zookeeper-client`
crate in coordinator/tests/zookeeper_client.rs.)
"""

import subprocess
import sys
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from kazoo.protocol.states import EventType
from kazoo.security import make_digest_acl

from zk_support import Ensemble


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    e = Ensemble(tmp_path_factory.mktemp("zk3"), n=3)
    yield e
    e.close()


@pytest.fixture
def clients(ensemble):
    cs = [KazooClient(hosts=ensemble.addr(i), timeout=6) for i in (1, 2, 3)]
    for c in cs:
        c.start(timeout=10)
    yield cs
    for c in cs:
        c.stop()
        c.close()


def test_crud_with_versions(clients):
    a, b, _ = clients
    a.create("/crud", b"v0")
    b.sync("/crud")
    data, stat = b.get("/crud")
    assert data == b"v0" and stat.version == 0 and stat.czxid == stat.mzxid
    with pytest.raises(BadVersionError):
        b.set("/crud", b"v1", version=7)
    stat = b.set("/crud", b"v1", version=0)
    assert stat.version == 1 and stat.dataLength == 2
    with pytest.raises(NodeExistsError):
        a.create("/crud")
    a.create("/crud/c")
    with pytest.raises(NotEmptyError):
        a.delete("/crud")
    a.sync("/crud")
    assert a.get_children("/crud") == ["c"]
    parent = a.exists("/crud")
    assert parent.numChildren == 1 and parent.cversion == 1
    a.delete("/crud", recursive=True)
    b.sync("/")
    with pytest.raises(NoNodeError):
        b.get("/crud")


def test_sequential_numbering(clients):
    a, b, c = clients
    a.create("/seq")
    names = [cl.create("/seq/n-", sequence=True) for cl in (a, b, c, a, b, c)]
    assert names == [f"/seq/n-{i:010d}" for i in range(6)]


def test_ephemerals_vanish_when_session_closes_or_expires(ensemble, clients):
    a, b, _ = clients
    owner = KazooClient(hosts=ensemble.addr(3), timeout=6)
    owner.start()
    owner.create("/eph", ephemeral=True)
    b.sync("/")
    assert b.exists("/eph").ephemeralOwner == owner.client_id[0]
    gone = threading.Event()
    b.exists("/eph", watch=lambda ev: gone.set())
    owner.stop()
    assert gone.wait(10)

    # Expiry: a client process that dies without closing its session.
    script = (
        "import os, sys; from kazoo.client import KazooClient; "
        f"c = KazooClient(hosts='{ensemble.addr(2)}', timeout=4); c.start(); "
        "c.create('/doomed', ephemeral=True); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    a.sync("/")
    assert a.exists("/doomed") is not None, "alive until the session times out"
    deadline = time.time() + 30
    while time.time() < deadline:
        a.sync("/")
        if a.exists("/doomed") is None:
            break
        time.sleep(0.2)
    assert a.exists("/doomed") is None, "ephemeral of an expired session is gone"


def test_watches_fire_once_with_the_right_event(clients):
    a, b, c = clients
    a.create("/w", b"0")
    c.sync("/w")
    events = []
    done = threading.Event()

    def watcher(ev):
        events.append((ev.type, ev.path))
        done.set()

    c.get("/w", watch=watcher)
    b.set("/w", b"1")
    assert done.wait(10)
    done.clear()
    b.set("/w", b"2")
    time.sleep(0.5)
    assert events == [(EventType.CHANGED, "/w")], "one-shot"

    kids = threading.Event()
    c.get_children("/w", watch=lambda ev: kids.set() if ev.type == EventType.CHILD else None)
    a.create("/w/k")
    assert kids.wait(10)

    created = threading.Event()
    c.exists("/w/later", watch=lambda ev: created.set() if ev.type == EventType.CREATED else None)
    b.create("/w/later")
    assert created.wait(10)

    deleted = threading.Event()
    c.sync("/w/k")
    c.get("/w/k", watch=lambda ev: deleted.set() if ev.type == EventType.DELETED else None)
    a.delete("/w/k")
    assert deleted.wait(10)


def test_null_data_reads_back_as_null_and_empty_as_empty(clients):
    """A znode created or set with null data is not one with empty data: jute length -1
    comes back, on every server (Kafka's /latest_producer_id_block depends on it)."""
    a, b, c = clients
    a.create("/null-data", None)
    a.create("/empty-data", b"")
    a.create("/set-null", b"x")
    a.set("/set-null", None)
    for client in (a, b, c):
        client.sync("/")
        data, stat = client.get("/null-data")
        assert data is None and stat.dataLength == 0
        assert client.get("/empty-data")[0] == b""
        assert client.get("/set-null")[0] is None


def test_multi_is_atomic(clients):
    a, b, _ = clients
    a.create("/multi", b"v")
    t = b.transaction()
    t.create("/multi/new")
    t.set_data("/multi", b"changed", version=5)
    results = t.commit()
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], BadVersionError)
    a.sync("/multi")
    assert a.exists("/multi/new") is None and a.get("/multi")[0] == b"v"
    t = b.transaction()
    t.create("/multi/new")
    t.set_data("/multi", b"changed", version=0)
    t.check("/multi", 1)
    results = t.commit()
    assert results[0] == "/multi/new"
    assert results[1].version == 1
    assert results[2] is True
    a.sync("/multi")
    assert a.get("/multi")[0] == b"changed" and a.exists("/multi/new")


def test_acls_deny_what_they_should(ensemble, clients):
    a, b, c = clients
    a.add_auth("digest", "alice:secret")
    a.create("/secret", b"s", acl=[make_digest_acl("alice", "secret", all=True)])
    b.sync("/secret")
    with pytest.raises(NoAuthError):
        b.get("/secret")
    with pytest.raises(NoAuthError):
        b.set("/secret", b"x")
    with pytest.raises(NoAuthError):
        b.create("/secret/child")
    acls, _ = b.get_acls("/secret")
    assert acls[0].id.scheme == "digest" and acls[0].id.id.startswith("alice:")
    b.add_auth("digest", "alice:secret")
    assert b.get("/secret")[0] == b"s"
    # ip scheme: only 127.0.0.0/8 may read.
    a.create("/ipguard", b"i", acl=[make_digest_acl("alice", "secret", all=True)])
    from kazoo.security import ACL, Id, Permissions

    admin = make_digest_acl("alice", "secret", all=True)
    a.set_acls("/ipguard", [ACL(Permissions.READ, Id("ip", "10.0.0.0/8")), admin])
    c.sync("/ipguard")
    with pytest.raises(NoAuthError):
        c.get("/ipguard")
    a.set_acls("/ipguard", [ACL(Permissions.READ, Id("ip", "127.0.0.0/8")), admin])
    c.sync("/ipguard")
    assert c.get("/ipguard")[0] == b"i"
    with pytest.raises(NoAuthError):
        c.set("/ipguard", b"no write for ip readers")


def test_lock_under_contention_across_servers(ensemble):
    clients = [KazooClient(hosts=ensemble.addr(1 + i % 3), timeout=6) for i in range(6)]
    for c in clients:
        c.start()
    holders = []
    inside = []
    errors = []

    def worker(c, n):
        lock = c.Lock("/locks/l", f"w{n}")
        for _ in range(5):
            with lock:
                inside.append(n)
                if len(inside) != 1:
                    errors.append("two holders")
                holders.append(n)
                time.sleep(0.01)
                inside.remove(n)

    threads = [threading.Thread(target=worker, args=(c, n)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for c in clients:
        c.stop()
    assert not errors
    assert len(holders) == 30


def test_election_under_contention_across_servers(ensemble):
    clients = [KazooClient(hosts=ensemble.addr(1 + i % 3), timeout=6) for i in range(3)]
    for c in clients:
        c.start()
    leaders = []
    stop = threading.Event()

    def run(c, n):
        def lead():
            leaders.append(n)
            # Lead briefly, then hand over by returning.
            time.sleep(0.2)

        e = c.Election("/election", f"c{n}")
        try:
            while not stop.is_set() and len(leaders) < 6:
                e.run(lead)
        except Exception:
            # The client was stopped while contending: the test is over.
            return

    threads = [threading.Thread(target=run, args=(c, n), daemon=True) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    deadline = time.time() + 60
    while time.time() < deadline and len(leaders) < 6:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(10)
    for c in clients:
        c.stop()
    assert len(leaders) >= 6
    assert len(set(leaders)) == 3, "every contender got to lead"


@pytest.mark.parametrize("impl", ["strata", "zookeeper"])
def test_server_lines_with_client_addresses(tmp_path, impl):
    """A zoo.cfg without clientPort whose `server.N` lines end in `;host:port`, as
    ZooKeeper 3.5+ writes them: each server serves clients where its line says, and
    /zookeeper/config reads the same as on Apache ZooKeeper (the same test runs there)."""
    e = Ensemble(tmp_path, n=3, impl=impl, client_in_server_lines=True)
    try:
        expected = "".join(
            f"server.{i}=127.0.0.{i}:{e.quorum_port}:{e.election_port}:participant;127.0.0.{i}:{e.client_port}\n"
            for i in (1, 2, 3)
        ) + "version=0"
        for i in (1, 2, 3):
            c = KazooClient(hosts=e.addr(i), timeout=6)
            c.start(timeout=20)
            try:
                data, stat = c.get("/zookeeper/config")
                assert (data.decode(), stat.version) == (expected, -1)
            finally:
                c.stop()
                c.close()
    finally:
        e.close()

