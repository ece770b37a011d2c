#!/usr/bin/env bash
# Seeds fuzz/corpus/ from real clients' traffic (run by hand when a client or an API is
# added; the result is checked in):
#
#   kafka_request   frames sent by librdkafka (confluent-kafka), kafka-python, Kafka's Java
#                   tools and kcat to a strata-broker, through fuzz/capture.py
#   record_batch    the batches those clients produced (every codec), from the segments
#   offsets_topic   keys and values of __consumer_offsets written by the groups above
#   znode_json      every znode a strata-broker and an Apache Kafka 3.9 broker wrote
#   (kafka_request also gets Kafka 3.9's inter-broker requests: a Kafka follower's Fetch
#   and AlterPartition, the Kafka controller's LeaderAndIsr and UpdateMetadata)
#   zk_request      frames sent by kazoo and Apache ZooKeeper's zkCli to a strata-coordinator
#   zk_storage      the body of a coordinator snapshot
#   server_properties / zoo_cfg   the shipped configs and the ones used here
#
# Needs what `make setup` installs and the debug binaries in $STRATA_BIN_DIR.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
source tests/wait.sh
cache="${STRATA_CACHE:-$HOME/.cache/strata}"
bin="${STRATA_BIN_DIR:-${CARGO_TARGET_DIR:-$cache/target}/debug}"
py="$cache/venv/bin/python"
corpus="$repo/fuzz/corpus"
work="$(mktemp -d /tmp/strata-seeds.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # A Kafka broker's controlled shutdown can wait on a controller that is gone.
    for _ in $(seq 1 100); do
        alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${SEEDS_KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- ZooKeeper: a coordinator, kazoo and zkCli through the proxy ---------------------------
zk=$(port)
zk_proxy=$(port)
cat >"$work/zoo.cfg" <<CFG
tickTime=500
dataDir=$work/zk
clientPort=$zk
clientPortAddress=127.0.0.1
snapCount=50
maxSessionTimeout=60000
CFG
"$bin/strata-coordinator" --config "$work/zoo.cfg" >"$work/zk.log" 2>&1 &
pids+=($!)
"$py" fuzz/capture.py "$zk_proxy" "$zk" "$corpus/zk_request" --per-kind 6 &
pids+=($!)
eventually 60 listening 127.0.0.1 "$zk"
eventually 10 listening 127.0.0.1 "$zk_proxy"
"$py" - "$zk_proxy" <<'PY'
import sys
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl
zk = KazooClient(hosts=f"127.0.0.1:{sys.argv[1]}")
zk.start()
zk.ensure_path("/seeds/a/b")
zk.create("/seeds/data", b"value")
zk.create("/seeds/null")
zk.create("/seeds/seq-", b"x", sequence=True)
zk.create("/seeds/eph", b"e", ephemeral=True)
zk.create("/seeds/ttl", b"t")
zk.set("/seeds/data", b"new value")
zk.get("/seeds/data", watch=lambda e: None)
zk.get_children("/seeds", watch=lambda e: None)
zk.exists("/seeds/missing", watch=lambda e: None)
zk.set_acls("/seeds/a", [make_digest_acl("user", "pw", all=True)])
zk.get_acls("/seeds/a")
t = zk.transaction()
t.create("/seeds/t1", b"1")
t.check("/seeds/data", 1)
t.set_data("/seeds/t1", b"2")
t.delete("/seeds/t1")
t.commit()
zk.sync("/seeds")
zk.add_auth("digest", "user:pw")
zk.delete("/seeds/data")
zk.stop()
PY
zk_lib="$(bash tools/setup-zookeeper.sh)"
java -cp "$zk_lib/*" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn org.apache.zookeeper.ZooKeeperMain \
    -server "127.0.0.1:$zk_proxy" <<'CLI' >/dev/null 2>&1 || true
create /cli data
create -e /cli/eph e
create -s /cli/seq s
set /cli other
get -s /cli
ls -R /
stat /cli
getAcl /cli
setAcl /cli world:anyone:cdrwa
addWatch -m PERSISTENT_RECURSIVE /cli
getAllChildrenNumber /
getEphemerals /
whoami
deleteall /cli
CLI

# --- Kafka: a broker in ZooKeeper mode on the coordinator, clients through the proxy -------
kafka=$(port)
kafka_proxy=$(port)
start_strata() {
    "$bin/strata-broker" --override "listeners=PLAINTEXT://127.0.0.1:$kafka" \
        --override "advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_proxy" \
        --override "log.dirs=$work/kafka" --override "zookeeper.connect=127.0.0.1:$zk/strata" \
        --override metrics.port=0 --override group.initial.rebalance.delay.ms=0 \
        --override offsets.topic.num.partitions=1 --override offsets.topic.replication.factor=1 \
        >>"$work/kafka.log" 2>&1 &
    strata_pid=$!
    pids+=($strata_pid)
}
start_strata
"$py" fuzz/capture.py "$kafka_proxy" "$kafka" "$corpus/kafka_request" --kafka --per-kind 4 &
pids+=($!)
eventually 60 listening 127.0.0.1 "$kafka"
eventually 10 listening 127.0.0.1 "$kafka_proxy"
bootstrap="127.0.0.1:$kafka_proxy"
"$py" - "$bootstrap" <<'PY'
import sys
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
import kafka
bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})
for f in admin.create_topics([NewTopic("seeds", 2, 1), NewTopic("compacted", 1, 1,
        config={"cleanup.policy": "compact"})]).values():
    f.result()
for f in admin.describe_configs([ConfigResource("topic", "seeds")]).values():
    f.result()
admin.create_partitions([NewPartitions("seeds", 3)])
for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 5})
    for i in range(20):
        p.produce("seeds", key=f"k{i}", value=f"value {i} " * 5, headers=[("h", b"v")])
        p.produce("compacted", key=f"k{i % 4}", value=f"v{i}")
    p.flush(30)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "seeds-group", "auto.offset.reset": "earliest"})
c.subscribe(["seeds"])
import time
got, deadline = 0, time.monotonic() + 60
while got < 100 and time.monotonic() < deadline:
    m = c.poll(1)
    if m is not None and not m.error():
        got += 1
assert got > 0, "the consumer got no records"
c.commit(asynchronous=False)
c.offsets_for_times([TopicPartition("seeds", 0, 0)])
c.close()
admin.list_consumer_groups().result()
admin.describe_consumer_groups(["seeds-group"])["seeds-group"].result()
kp = kafka.KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip")
for i in range(10):
    kp.send("seeds", key=b"py", value=b"from kafka-python")
kp.flush()
kc = kafka.KafkaConsumer("seeds", bootstrap_servers=bootstrap, group_id="py-group",
                         auto_offset_reset="earliest", consumer_timeout_ms=3000)
for _ in kc:
    pass
kc.commit()
kc.close()
ka = kafka.KafkaAdminClient(bootstrap_servers=bootstrap)
ka.list_groups()
ka.describe_topics(["seeds"])
ka.close()
PY
tool() { bash tools/kafka-class.sh "$@" >/dev/null 2>&1 || true; }
tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create --topic java-seeds --partitions 2
tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --describe --topic java-seeds
seq 1 20 | tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$bootstrap" --topic java-seeds \
    --producer-property compression.type=lz4
tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$bootstrap" --topic java-seeds --from-beginning \
    --max-messages 20 --group java-group
tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$bootstrap" --describe --group java-group
tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$bootstrap" --reset-offsets --to-earliest \
    --group java-group --topic java-seeds --execute
tool kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --alter --entity-type topics \
    --entity-name java-seeds --add-config retention.ms=100000
tool org.apache.kafka.tools.DeleteRecordsCommand --bootstrap-server "$bootstrap" --offset-json-file /dev/stdin \
    <<<'{"partitions":[{"topic":"java-seeds","partition":0,"offset":1}],"version":1}'
tool org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$bootstrap" --topic java-seeds
tool org.apache.kafka.tools.LogDirsCommand --bootstrap-server "$bootstrap" --describe
if kcat="$(bash tools/setup-kcat.sh 2>/dev/null)" && [ -x "$kcat" ]; then
    "$kcat" -b "$bootstrap" -L >/dev/null 2>&1 || true
    echo hello | "$kcat" -b "$bootstrap" -t kcat-seeds -P -z snappy >/dev/null 2>&1 || true
    "$kcat" -b "$bootstrap" -t kcat-seeds -C -e -o beginning >/dev/null 2>&1 || true
fi

# --- Apache Kafka 3.9 as a peer: a Kafka follower of a Strata leader (two partitions on
# both brokers, so each leads one; the Kafka follower's Fetch and
# AlterPartition come through the proxy), then, once the Strata broker (the controller)
# restarts, the Kafka controller's LeaderAndIsr and UpdateMetadata to it ------------------
kafka39_port=$(port)
"$py" - "$work" "$zk" "$bootstrap" "$kafka39_port" <<'PY'
import json, sys, time
sys.path.insert(0, "tests/python")
import kafka39
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.client import KazooClient
work, zk, bootstrap, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
k = kafka39.Broker(work, 1, port, f"127.0.0.1:{zk}/strata")
k.start()
z = KazooClient(hosts=f"127.0.0.1:{zk}")
z.start()
deadline = time.time() + 120
while not z.exists("/strata/brokers/ids/1") and time.time() < deadline:
    time.sleep(0.5)
assert z.exists("/strata/brokers/ids/1"), k.log()[-3000:]
z.stop()
admin = AdminClient({"bootstrap.servers": bootstrap})
for f in admin.create_topics([NewTopic("kafka39-follows", 2, 2)]).values():
    f.result(60)
p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
for i in range(200):
    p.produce("kafka39-follows", value=b"x" * 100)
p.flush(60)
open(f"{work}/kafka39.pid", "w").write(str(k.proc.pid))
PY
kafka39_pid=$(cat "$work/kafka39.pid")
pids+=($kafka39_pid)
sleep 5
kill -TERM "$strata_pid"
wait "$strata_pid" 2>/dev/null || true
start_strata
eventually 60 listening 127.0.0.1 "$kafka"
sleep 15
kill -TERM "$kafka39_pid" 2>/dev/null || true

# --- What the broker stored and wrote --------------------------------------------------------
"$py" - "$work/kafka" "$corpus" "$zk" <<'PY'
import glob, hashlib, os, struct, sys
logs, corpus, zk_port = sys.argv[1], sys.argv[2], sys.argv[3]

def put(target, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)

def batches(path):
    data = open(path, "rb").read()
    pos = 0
    while pos + 12 <= len(data):
        (n,) = struct.unpack(">i", data[pos + 8 : pos + 12])
        if n <= 0 or pos + 12 + n > len(data):
            break
        yield data[pos : pos + 12 + n]
        pos += 12 + n

def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]; i += 1
        v |= (c & 0x7F) << shift; shift += 7
        if not c & 0x80:
            return (v >> 1) ^ -(v & 1), i

seen = 0
for seg in sorted(glob.glob(os.path.join(logs, "*", "*.log"))):
    for b in batches(seg):
        if "__consumer_offsets" in seg:
            # The broker writes these uncompressed: walk the records for keys and values.
            i, count = 61, struct.unpack(">i", b[57:61])[0]
            for _ in range(count):
                length, i = varint(b, i)
                end = i + length
                i += 1
                _, i = varint(b, i); _, i = varint(b, i)
                klen, i = varint(b, i); key = b[i : i + max(klen, 0)]; i += max(klen, 0)
                vlen, i = varint(b, i); value = b[i : i + max(vlen, 0)]
                put("offsets_topic", key)
                if vlen > 0:
                    put("offsets_topic", value)
                i = end
        elif seen < 40:
            put("record_batch", b)
            seen += 1

from kazoo.client import KazooClient
zk = KazooClient(hosts=f"127.0.0.1:{zk_port}")
zk.start()
def walk(path):
    data, _ = zk.get(path)
    if data and data[:1] in (b"{", b'"') or (data and data.strip().isdigit()):
        put("znode_json", data)
    for child in zk.get_children(path):
        walk(path.rstrip("/") + "/" + child)
walk("/strata")
zk.stop()
PY

# --- A coordinator snapshot body (after the header: magic, crc, length) ----------------------
snap="$(ls -t "$work"/zk/version-2/snapshot.* 2>/dev/null | head -1 || true)"
if [ -n "$snap" ]; then
    mkdir -p "$corpus/zk_storage"
    tail -c +17 "$snap" >"$corpus/zk_storage/$(basename "$snap")"
fi

# --- Quorum traffic: the transactions kazoo and zkCli caused, as proposals and as they are
# logged, and one frame of every other ZAB message (fuzz/src/lib.rs zk_quorum) -------------
"$py" - "$work/zk/version-2" "$corpus/zk_quorum" <<'PY'
import glob, hashlib, os, struct, sys
logs, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
def put(data):
    with open(os.path.join(out, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)
def frame(msg):  # from server 2, a ZAB message (kind 0)
    return struct.pack(">qb", 2, 0) + msg
txns = []
for path in sorted(glob.glob(os.path.join(logs, "log.*"))):
    data, pos = open(path, "rb").read(), 0
    while pos + 8 <= len(data):
        crc, n = struct.unpack(">Ii", data[pos : pos + 8])
        if n <= 0 or pos + 8 + n > len(data):
            break
        txns.append(data[pos + 8 : pos + 8 + n])
        pos += 8 + n
for t in txns[:40]:
    put(t)
    zxid = struct.unpack(">q", t[:8])[0]
    put(frame(struct.pack(">iqiqi", 8, 1, 1, zxid, len(t)) + t))  # Propose
if txns:
    some = txns[:5]
    entries = b"".join(struct.pack(">qi", struct.unpack(">q", t[:8])[0], len(t)) + t for t in some)
    put(frame(struct.pack(">iqqi", 5, 1, 1, 0) + struct.pack(">qi", 0, len(some)) + entries + struct.pack(">q", 1 << 32)))  # DIFF
put(frame(struct.pack(">iqqqqi", 1, 3, 2, 1, 1 << 32 | 5, 0)))  # Vote
put(frame(struct.pack(">iqqqq?", 2, 7, 1, 2, 1 << 32 | 5, False)))  # FollowerInfo
put(frame(struct.pack(">iqq", 3, 7, 2)))  # LeaderInfo
put(frame(struct.pack(">iqqqq", 4, 7, 2, 1, 1 << 32 | 5)))  # AckEpoch
put(frame(struct.pack(">iqq", 6, 7, 2)))  # AckNewLeader
for code in (7, 9, 10, 11, 12):  # UpToDate, Ack, Commit, Ping, PingAck
    put(frame(struct.pack(">iqq", code, 2, 2 << 32 | 9)))
put(struct.pack(">qbi", 2, 1, 2) + struct.pack(">qq", 0x1000001, 0x1000002))  # session touch
PY

# --- Config files -----------------------------------------------------------------------------
mkdir -p "$corpus/server_properties" "$corpus/zoo_cfg"
cp config/server.properties "$corpus/server_properties/strata-server.properties"
cp config/cluster/*.properties "$corpus/server_properties/"
cp config/cluster/*.cfg "$corpus/zoo_cfg/"
cp "$work/zoo.cfg" "$corpus/zoo_cfg/seeds-zoo.cfg"
for t in "$corpus"/*; do echo "$(basename "$t"): $(ls "$t" | wc -l) inputs, $(du -sh "$t" | cut -f1)"; done
