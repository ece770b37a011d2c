"""SIGKILL the leader of a three-server ensemble under write load.

A new leader is elected, clients reconnect within their session timeout (their
ephemeral node survives), every acknowledged write is on every server afterwards, and
the killed server rejoins and catches up by DIFF; a server away for longer than the
leader's snapshot interval catches up by SNAP.
"""

import threading
import time

from kazoo.client import KazooClient

from waiting import wait_for
from zk_support import Ensemble, Writer, children_on, retrying_client


def test_sigkill_leader_under_write_load(tmp_path):
    e = Ensemble(tmp_path, n=3, extra="snapCount=200\nautopurge.snapRetainCount=3")
    try:
        leader = e.wait_leader()
        client = retrying_client(e.hosts())
        client.start(timeout=10)
        client.ensure_path("/load")
        client.create("/alive", ephemeral=True)
        session = client.client_id
        with Writer(client) as w:
            wait_for(lambda: len(w.acked) > 100, 30, "writes before the kill")
            e.kill(leader)
            killed_at = len(w.acked)
            t0 = time.time()
            wait_for(lambda: len(w.acked) > killed_at + 50, 30, "writes after the kill")
            resumed = time.time() - t0
        new_leader = e.wait_leader()
        assert new_leader != leader
        # Within the 6 s session timeout, on the same session.
        assert resumed < 6, f"writes resumed only after {resumed:.1f}s"
        assert client.client_id == session
        assert client.exists("/alive") is not None
        acked = set(w.acked)
        for i in range(1, 4):
            if i != leader:
                missing = acked - children_on(e, i)
                assert not missing, f"server {i} lost {len(missing)} acknowledged writes"

        # The killed leader rejoins and catches up by DIFF.
        e.start(leader)
        e.wait_serving(leader)
        missing = acked - children_on(e, leader)
        assert not missing, f"rejoined server {leader} lacks {len(missing)} writes"
        log = e.log(leader)
        assert "SNAP at" not in log.split("opened")[-1], "short absence: DIFF, not SNAP"

        # A server away for many snapshots catches up by SNAP.
        away = next(i for i in range(1, 4) if e.mode(i) == "follower")
        e.kill(away)
        for n in range(1500):
            client.retry(client.create, f"/load/late{n}", b"y" * 64)
        acked |= {f"/load/late{n}" for n in range(1500)}
        e.start(away)
        e.wait_serving(away)
        missing = acked - children_on(e, away)
        assert not missing, f"server {away} lacks {len(missing)} writes after SNAP"
        assert "SNAP at" in e.log(away).split("opened")[-1]
        client.stop()
        client.close()
    finally:
        e.close()


def test_session_moves_to_another_server(tmp_path):
    """A client whose server dies reconnects elsewhere with the same session id and
    password, and keeps its ephemeral node. (kazoo drops its one-shot watches when a
    connection breaks rather than re-registering them with setWatches, so the watch is
    set again after the move and must fire on the next change made through another
    server.)"""
    e = Ensemble(tmp_path, n=3)
    try:
        client = retrying_client(e.hosts())
        client.start(timeout=10)
        client.create("/moving", b"0")
        client.create("/moving-eph", ephemeral=True)
        session = client.client_id
        host, _ = client._connection._socket.getpeername()
        here = int(host.rsplit(".", 1)[1])
        e.kill(here)
        other = next(i for i in (1, 2, 3) if i != here)
        writer = retrying_client(e.addr(other))
        writer.start(timeout=20)
        writer.retry(writer.set, "/moving", b"1")
        wait_for(lambda: client.connected, 30, "the client to reconnect to another server")
        assert client.client_id == session, "reconnected with the same session"
        # Through the retry: `connected` may have been read before the client noticed that
        # its server died.
        client.retry(client.sync, "/moving-eph")
        assert client.retry(client.exists, "/moving-eph") is not None, "session (and its ephemeral) kept"
        fired = threading.Event()
        data, _ = client.retry(client.get, "/moving", watch=lambda ev: ev.type == "CHANGED" and fired.set())
        assert data == b"1", "the write made through another server is visible"
        writer.retry(writer.set, "/moving", b"2")
        assert fired.wait(20), "a watch set on the new server fires"
        writer.stop()
        client.stop()
    finally:
        e.close()
