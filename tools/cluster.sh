#!/usr/bin/env bash
# `make cluster`: three strata-coordinators and three strata-brokers on 127.0.0.1..3, from
# config/cluster/, data in ./data/cluster. Runs in the foreground; Ctrl-C stops all six
# (the brokers first, with a controlled shutdown each).
#
#   tools/cluster.sh BIN_DIR
set -euo pipefail

bin=${1:?usage: cluster.sh BIN_DIR}
cd "$(dirname "$0")/.."
mkdir -p data/cluster
log_dir=data/cluster/logs
mkdir -p "$log_dir"

# Each process gets its own session, so a Ctrl-C reaches only this script, which stops
# the brokers before the coordinators they need for a controlled shutdown.
pids=()
brokers=()
stop() {
    trap - INT TERM EXIT
    echo
    echo "Stopping the brokers (controlled shutdown), then the coordinators..."
    for pid in "${brokers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${brokers[@]}"; do wait "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop INT TERM EXIT

for i in 1 2 3; do
    mkdir -p "data/cluster/zk$i"
    echo "$i" > "data/cluster/zk$i/myid"
    setsid "$bin/strata-coordinator" --config "config/cluster/zoo$i.cfg" >>"$log_dir/coordinator$i.log" 2>&1 &
    pids+=($!)
done

# Brokers register in the coordinator, so the ensemble has to answer first.
ready() { [[ "$(exec 3<>"/dev/tcp/$1/$2" && printf srvr >&3 && cat <&3)" == *"Mode: "* ]]; }
for _ in $(seq 1 120); do
    n=0
    for i in 1 2 3; do ready "127.0.0.$i" 2181 2>/dev/null && n=$((n + 1)); done
    ((n >= 2)) && break
    sleep 0.5
done

for i in 1 2 3; do
    setsid "$bin/strata-broker" --config "config/cluster/server$i.properties" >>"$log_dir/broker$i.log" 2>&1 &
    pids+=($!)
    brokers+=($!)
done

cat <<EOF
Coordinators: 127.0.0.1:2181,127.0.0.2:2181,127.0.0.3:2181 (chroot /strata for the brokers)
Brokers:      127.0.0.1:9092,127.0.0.2:9092,127.0.0.3:9092
Metrics:      http://127.0.0.{1,2,3}:9404/metrics
Logs:         $log_dir/   Data: data/cluster/
Try:          $bin/strata --bootstrap-server 127.0.0.1:9092 topics create --topic demo --partitions 3 --replication-factor 3
Ctrl-C stops all six.
EOF

# Stay up until interrupted, or until any process exits on its own.
wait -n "${pids[@]}" || true
echo "A process of the cluster exited; see $log_dir/." >&2
