"""Dynamic reconfiguration (ZooKeeper 3.5+ `reconfig`, `/zookeeper/config`): an
ensemble grows from three servers to five and shrinks to three other ones under write
load, with no acknowledged write lost, through kazoo and Apache ZooKeeper's zkCli — on
strata-coordinator and, from the same zoo.cfg files, on Apache ZooKeeper 3.9, so the
expectations are ZooKeeper's own.
"""

import base64
import hashlib
import subprocess

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NewConfigNoQuorumError,
    NoAuthError,
    ReconfigDisabledError,
)
from kazoo.security import make_acl

from waiting import wait_for
from zk_support import Ensemble, Writer, children_on, retrying_client, zookeeper_lib

SUPER = "super:reconfig-secret"
SUPER_DIGEST = "super:" + base64.b64encode(hashlib.sha1(SUPER.encode()).digest()).decode()
# The super digest as a zoo.cfg key: ZooKeeper turns an unknown key into the system
# property `zookeeper.<key>`, which is where it reads the super digest from.
RECONFIG = f"reconfigEnabled=true\nDigestAuthenticationProvider.superDigest={SUPER_DIGEST}"


def client(hosts, auth=False):
    c = retrying_client(hosts)
    if auth:
        c.add_auth_async("digest", SUPER)
    c.start(timeout=20)
    return c


def config_on(e, i):
    """`/zookeeper/config` as server `i` answers it, after catching up."""
    c = KazooClient(hosts=e.addr(i), timeout=6)
    c.start(timeout=10)
    try:
        c.sync("/")
        return c.get("/zookeeper/config")[0].decode()
    finally:
        c.stop()
        c.close()


def members(text):
    return sorted(line.split("=")[0] for line in text.splitlines() if line.startswith("server."))


def version(text):
    return int(text.rsplit("version=", 1)[1], 16)


def zkcli(e, i, *args):
    out = subprocess.run(
        [
            "java",
            "-cp",
            zookeeper_lib() + "/*",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "org.apache.zookeeper.ZooKeeperMain",
            "-server",
            e.addr(i),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout + out.stderr


@pytest.mark.parametrize("impl", ["strata", "zookeeper"])
def test_grow_to_five_and_shrink_to_three_others_without_losing_a_write(tmp_path, impl):
    e = Ensemble(tmp_path, n=3, extra=RECONFIG, client_in_server_lines=True, impl=impl)
    all_hosts = ",".join(e.addr(i) for i in range(1, 6))
    admin = writer_client = None
    try:
        admin = client(all_hosts, auth=True)
        first = config_on(e, 1)
        assert members(first) == ["server.1", "server.2", "server.3"], first
        joining = ",".join(e.server_line(i, "participant") for i in (4, 5))

        anonymous = client(e.hosts())
        with pytest.raises(NoAuthError):
            anonymous.reconfig(joining=joining, leaving=None, new_members=None)
        anonymous.stop()
        anonymous.close()
        with pytest.raises(NewConfigNoQuorumError):
            # Servers 4 and 5 are not running: of the voters {1, 4, 5} only server 1
            # is connected and synced.
            admin.reconfig(joining=joining, leaving="2,3", new_members=None)

        writer_client = client(all_hosts)
        writer_client.ensure_path("/load")
        with Writer(writer_client) as w:
            # Servers 4 and 5 start with the ensemble and themselves in their zoo.cfg
            # and sync as followers that do not vote yet.
            e.add_server(4, [1, 2, 3])
            e.add_server(5, [1, 2, 3])
            e.wait_serving(4, timeout=60)
            e.wait_serving(5, timeout=60)

            data, stat = admin.reconfig(joining=joining, leaving=None, new_members=None)
            grown = data.decode()
            assert members(grown) == [f"server.{i}" for i in range(1, 6)], grown
            assert version(grown) == stat.mzxid, (grown, stat)
            assert e.server_line(5, "participant") in grown
            for i in range(1, 6):
                wait_for(lambda i=i: config_on(e, i) == grown, timeout=30)
            with pytest.raises(BadVersionError):
                admin.reconfig(joining=None, leaving="5", new_members=None, from_config=version(first))

            # Servers 4 and 5 vote now: without two of the first three the remaining
            # three of five are a quorum and the writes go on.
            e.kill(1)
            e.kill(2)
            before = len(w.acked)
            wait_for(lambda: len(w.acked) > before + 50, timeout=60)

            data, stat = admin.reconfig(joining=None, leaving="1,2", new_members=None)
            shrunk = data.decode()
            assert members(shrunk) == ["server.3", "server.4", "server.5"], shrunk
            assert version(shrunk) == stat.mzxid > version(grown)
            with pytest.raises(BadArgumentsError):
                # Fewer than two voters.
                admin.reconfig(joining=None, leaving="3,4", new_members=None)

            # A member restarts with its old zoo.cfg and comes back with what the
            # ensemble became, not with what the file says.
            e.kill(4)
            e.start(4)
            e.wait_serving(4, timeout=60)
            wait_for(lambda: config_on(e, 4) == shrunk, timeout=30)
            before = len(w.acked)
            wait_for(lambda: len(w.acked) > before + 50, timeout=60)

        # Every acknowledged write is on every member of the new ensemble.
        for i in (3, 4, 5):
            on = children_on(e, i)
            missing = [p for p in w.acked if p not in on]
            assert not missing, f"server {i} lacks {len(missing)} acknowledged writes: {missing[:5]}"

        # zkCli: a super user opens /zookeeper/config to everyone, then
        # `reconfig -remove` and `reconfig -add` as ZooKeeper's own CLI sends them.
        admin.set_acls("/zookeeper/config", [make_acl("world", "anyone", all=True)])
        out = zkcli(e, 3, "reconfig", "-remove", "5")
        assert "server.5=" not in out and "server.4=" in out, out
        wait_for(lambda: members(config_on(e, 4)) == ["server.3", "server.4"], timeout=30)
        out = zkcli(e, 3, "reconfig", "-add", e.server_line(5, "participant"))
        assert "server.5=" in out, out
        wait_for(
            lambda: members(config_on(e, 5)) == ["server.3", "server.4", "server.5"], timeout=30
        )
        out = zkcli(e, 4, "config")
        assert "server.5=" in out and "version=" in out, out
    finally:
        for c in (admin, writer_client):
            if c:
                c.stop()
                c.close()
        e.close()


@pytest.mark.parametrize("impl", ["strata", "zookeeper"])
def test_reconfig_is_refused_unless_enabled(tmp_path, impl):
    e = Ensemble(tmp_path, n=3, client_in_server_lines=True, impl=impl)
    try:
        c = client(e.hosts())
        with pytest.raises(ReconfigDisabledError):
            c.reconfig(joining=None, leaving="3", new_members=None)
        c.stop()
        c.close()
    finally:
        e.close()
