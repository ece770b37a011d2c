# Shared by the benchmark scripts (sourced, after they set `here` to the repository): the
# build directory, the processes a benchmark started (killed at exit, with its `work`
# directory), waiting for a port, timing, what a process costs, Kafka's tools, the
# broker properties of a three-broker cluster.

cache="${STRATA_CACHE:-$HOME/.cache/strata}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
bin="$CARGO_TARGET_DIR/release"

pids=()

# The data is thrown away: no controlled shutdowns to wait for.
stop_all() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}

cleanup() {
    stop_all
    rm -rf "$work"
}
trap cleanup EXIT

wait_port() { # HOST PORT
    for _ in $(seq 1 1200); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listening on $1:$2" >&2
    return 1
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

tool() { bash "$here/tools/kafka-class.sh" "$@"; }

# ticks PID...: user + system CPU clock ticks of running processes (kafka-class.sh execs
# java, so a JVM's pid is the one its script was started as).
ticks() {
    local total=0 pid
    for pid in "$@"; do
        if [ -r "/proc/$pid/stat" ]; then
            total=$((total + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")))
        fi
    done
    echo "$total"
}

rss_mib() { awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$1/status"; }

# What every broker of every three-broker cluster shares, whichever system.
cluster_props() {
    cat <<EOF
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
num.partitions=3
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
EOF
}
