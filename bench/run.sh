#!/usr/bin/env bash
# `make bench`: every benchmark, each side by side with the real Apache project on this
# machine in the same run. Results go to stdout and to bench/results/ (not committed);
# docs/benchmarks.md records the figures of a run together with the commands.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$here/results"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
echo "# Kafka: Strata vs Apache Kafka"
bash "$here/kafka.sh" "$here/results/kafka-$stamp.md"
echo
echo "# Three-broker clusters: Strata vs Apache Kafka 3.9 (ZooKeeper) and 4.3.1 (KRaft)"
bash "$here/cluster.sh" "$here/results/cluster-$stamp.md"
echo
echo "# Many partitions: 10 vs 10,000 on one broker, fetch sessions in a cluster"
bash "$here/partitions.sh" "$here/results/partitions-$stamp.md"
echo
echo "# Restart after kill -9 with 10 GiB of log"
bash "$here/restart.sh" "$here/results/restart-$stamp.md"
echo
echo "# Footprint: start-to-ready, idle memory, 10,000 connections, binary size"
bash "$here/footprint.sh" "$here/results/footprint-$stamp.md"
if [ -x "$here/zk/run.sh" ]; then
    echo
    echo "# ZooKeeper: strata-coordinator vs Apache ZooKeeper"
    bash "$here/zk/run.sh" | tee "$here/results/zookeeper-$stamp.md"
fi
