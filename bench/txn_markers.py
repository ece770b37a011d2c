"""Many transactional producers ending transactions at once on a three-broker cluster:
commit latency and WriteTxnMarkers requests per transaction.

    STRATA_BIN_DIR=<dir with strata-broker> STRATA_COORDINATOR_BIN=<strata-coordinator> \
        python bench/txn_markers.py PRODUCERS TRANSACTIONS
"""
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))

from confluent_kafka import Producer  # noqa: E402

from strata_broker import metric  # noqa: E402
from strata_cluster import StrataCluster  # noqa: E402
from zk_support import Ensemble  # noqa: E402


def main():
    producers, transactions = int(sys.argv[1]), int(sys.argv[2])
    root = Path(tempfile.mkdtemp(prefix="marker-load-"))
    ensemble = Ensemble(root / "zk", n=1, impl="strata")
    cluster = StrataCluster(root / "brokers", ensemble, extra={"transaction.state.log.num.partitions": "6"})
    try:
        cluster.create_topic("load", partitions=6, rf=3, config={"min.insync.replicas": "2"})
        ready = []
        for i in range(producers):
            p = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": f"load-{i}", "linger.ms": 1})
            p.init_transactions(60)
            ready.append(p)
        latencies = []
        lock = threading.Lock()
        start = threading.Barrier(producers)

        def run(p, i):
            start.wait()
            for t in range(transactions):
                p.begin_transaction()
                for k in range(6):
                    p.produce("load", value=f"{i}-{t}-{k}".encode(), partition=k)
                p.flush(60)
                began = time.perf_counter()
                p.commit_transaction(60)
                with lock:
                    latencies.append((time.perf_counter() - began) * 1000)

        def requests():
            return sum(metric(cluster.metrics_port, 'strata_broker_requests_total{api="WriteTxnMarkers"}',
                              host=cluster.host(b)) or 0 for b in cluster.ids)

        before = requests()
        began = time.perf_counter()
        threads = [threading.Thread(target=run, args=(p, i)) for i, p in enumerate(ready)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        time.sleep(1)
        sent = requests() - before
        latencies.sort()
        n = len(latencies)
        print(f"{producers} producers x {transactions} transactions of 6 partitions (RF 3): "
              f"{n / elapsed:.0f} commits/s; commit latency p50 {statistics.median(latencies):.1f} ms, "
              f"p99 {latencies[int(n * 0.99) - 1]:.1f} ms; WriteTxnMarkers requests between brokers: "
              f"{sent:.0f} ({sent / n:.2f} per transaction)")
    finally:
        cluster.close()
        ensemble.close()


main()
