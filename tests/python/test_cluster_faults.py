"""A fault test in the manner of Jepsen, with a checker.

Three strata-brokers on a three-server strata-coordinator ensemble, one topic (3
partitions, RF 3, min.insync.replicas 2, no unclean elections). An idempotent acks=all
producer writes numbered records the whole time, and a seeded random schedule injects
faults one after another, healing each before the next:

- SIGKILL of a partition leader, and of the controller broker;
- SIGKILL of the coordinator ensemble's leader;
- SIGSTOP of a partition leader for longer than its session timeout (a zombie leader,
  which must not acknowledge anything once the cluster moved on), then SIGCONT;
- a partition leader cut off the network (its 127.0.0.x address dropped with iptables);
- SIGTERM of a broker (a controlled shutdown), then a restart.

Afterwards every acknowledged record must be in the log at the offset it was
acknowledged at, exactly once, and every partition must be fully replicated again.

Alongside, a transactional producer commits and aborts transactions of 20 records across
another topic's partitions (its coordinator moving with the faults): a read_committed
consumer must read every committed transaction whole and exactly once, no aborted one,
and each of unknown outcome (a producer replaced after a fatal error) whole or not at
all; and once it stops, no transaction may hold the last stable offset back.

The seed is printed; `STRATA_FAULT_SEED=<seed>` replays a run, `STRATA_FAULTS=<n>` sets
the number of faults (20 by default).
"""

import os
import random
import subprocess
import time
from collections import Counter

import pytest

from strata_cluster import (
    BackgroundProducer,
    BackgroundTransactions,
    StrataCluster,
    check_acknowledged,
    check_transactions,
    consume_all,
    end_offsets,
    read_committed,
)
from waiting import wait_for
from zk_support import Ensemble

SESSION_TIMEOUT_MS = 4000
CHAIN = "STRATA-FAULTS"


def iptables(*args, check=True):
    return subprocess.run(["iptables", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def network():
    """A private iptables chain in OUTPUT; every packet on loopback passes it. Removed
    afterwards, whatever happened."""
    iptables("-N", CHAIN, check=False)
    iptables("-F", CHAIN)
    if iptables("-C", "OUTPUT", "-j", CHAIN, check=False).returncode != 0:
        iptables("-I", "OUTPUT", "-j", CHAIN)
    yield
    iptables("-D", "OUTPUT", "-j", CHAIN, check=False)
    iptables("-F", CHAIN, check=False)
    iptables("-X", CHAIN, check=False)


def cut(host):
    iptables("-A", CHAIN, "-s", host, "-j", "DROP")
    iptables("-A", CHAIN, "-d", host, "-j", "DROP")


def heal_network():
    iptables("-F", CHAIN)


def test_random_faults_lose_no_acknowledged_record(tmp_path, network):
    seed = int(os.environ.get("STRATA_FAULT_SEED", random.randrange(1 << 32)))
    faults = int(os.environ.get("STRATA_FAULTS", "20"))
    print(f"fault seed {seed} ({faults} faults); replay with STRATA_FAULT_SEED={seed}")
    rng = random.Random(seed)
    ensemble = Ensemble(tmp_path / "zk", n=3, impl="strata")
    cluster = StrataCluster(
        tmp_path / "brokers",
        ensemble,
        extra={
            "zookeeper.session.timeout.ms": str(SESSION_TIMEOUT_MS),
            "unclean.leader.election.enable": "false",
        },
    )
    injected = Counter()
    producer = None
    transactions = None
    try:
        topic = "jepsen"
        txn_topic = "jepsen-tx"
        cluster.create_topic(topic, partitions=3, rf=3, config={"min.insync.replicas": "2"})
        cluster.create_topic(txn_topic, partitions=3, rf=3, config={"min.insync.replicas": "2"})
        producer = BackgroundProducer(cluster.bootstrap, topic, prefix="j", rate=300)
        producer.wait_acked(300)
        transactions = BackgroundTransactions(cluster.bootstrap, txn_topic, 3, seed, prefix="t")
        wait_for(lambda: transactions.count("committed") >= 3, timeout=120,
                 what=lambda: f"the first transactions committed; errors {transactions.errors[-3:]}")

        def leader_of_some_partition():
            _, _, partitions = cluster.metadata(topic)
            leaders = [p[0] for p in partitions.values() if p[0] in cluster.running()]
            return rng.choice(leaders) if leaders else rng.choice(cluster.running())

        for n in range(faults):
            kind = rng.choice(
                ["kill_leader", "kill_controller", "kill_coordinator_leader",
                 "pause_leader", "cut_leader", "terminate_broker"]
            )
            acked_before = len(producer.acked)
            if kind == "kill_leader":
                victim = leader_of_some_partition()
                cluster.kill(victim)
                time.sleep(rng.uniform(1, 4))
                cluster.start(victim)
            elif kind == "kill_controller":
                victim = cluster.controller()
                if victim not in cluster.running():
                    victim = rng.choice(cluster.running())
                cluster.kill(victim)
                time.sleep(rng.uniform(1, 4))
                cluster.start(victim)
            elif kind == "kill_coordinator_leader":
                victim = ensemble.wait_leader()
                ensemble.kill(victim)
                time.sleep(rng.uniform(1, 4))
                ensemble.start(victim)
                ensemble.wait_serving(victim)
            elif kind == "pause_leader":
                victim = leader_of_some_partition()
                cluster.pause(victim)
                # Longer than the session: the cluster elects new leaders while the old
                # one is frozen; when it wakes it is a zombie.
                time.sleep(SESSION_TIMEOUT_MS / 1000 + rng.uniform(1, 3))
                cluster.resume(victim)
            elif kind == "cut_leader":
                victim = leader_of_some_partition()
                cut(cluster.host(victim))
                time.sleep(SESSION_TIMEOUT_MS / 1000 + rng.uniform(1, 3))
                heal_network()
            else:
                victim = rng.choice(cluster.running())
                cluster.stop(victim)
                time.sleep(rng.uniform(0.5, 2))
                cluster.start(victim)
            injected[kind] += 1
            print(f"fault {n + 1}/{faults}: {kind} on {victim}; acknowledged {acked_before} → {len(producer.acked)}; "
                  f"transactions {len(transactions.outcomes)}")
            # Heal before the next fault: every broker registered and in every ISR.
            cluster.wait_ready(list(cluster.ids), timeout=120)
            cluster.wait_partition(
                topic,
                lambda ps: all(len(p[2]) == 3 and p[0] >= 0 for p in ps.values()),
                timeout=120,
                what="every replica back in sync",
            )
        # The producers keep going after the last fault.
        producer.wait_acked(len(producer.acked) + 300)
        committed_before = transactions.count("committed")
        wait_for(lambda: transactions.count("committed") >= committed_before + 3, timeout=120,
                 what=lambda: f"transactions committed after the faults; errors {transactions.errors[-3:]}")
        acked = producer.stop()
        records = consume_all(cluster.bootstrap, topic)
        check_acknowledged(acked, records)
        outcomes = transactions.stop()
        # No transaction left hanging: the last stable offsets reach the high watermarks
        # (a transaction of a replaced producer within its 10 s timeout).
        ends = {}

        def stable():
            ends["committed"] = end_offsets(cluster.bootstrap, txn_topic, 3, "read_committed")
            ends["uncommitted"] = end_offsets(cluster.bootstrap, txn_topic, 3, "read_uncommitted")
            return ends["committed"] == ends["uncommitted"]

        wait_for(stable, timeout=60, what=lambda: f"last stable offsets at the high watermarks: {ends}")
        txn_records = read_committed(cluster.bootstrap, txn_topic, 3)
        check_transactions(outcomes, txn_records, "t", transactions.size)
        tally = Counter(outcomes.values())
        print(f"faults injected: {dict(injected)}; records acknowledged: {len(acked)}; "
              f"records stored: {len(records)}; lost: 0; transactions {dict(tally)}, "
              f"{len(txn_records)} records read committed, none partial or twice")
        assert sum(injected.values()) == faults
    finally:
        heal_network()
        if producer is not None and not producer._stop.is_set():
            producer._stop.set()
        if transactions is not None:
            transactions._stop.set()
        for i in cluster.ids:
            if i in cluster.procs:
                cluster.resume(i)
        cluster.close()
        ensemble.close()
