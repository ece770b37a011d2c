"""Consumer-group benchmark: three librdkafka (confluent-kafka) members consume one
6-partition topic together; then one leaves and we time how long until the other two
own every partition again (the rebalance time a user sees).

    python bench/groups.py BOOTSTRAP [RECORDS]

Prints one line: `records_per_s mb_per_s rebalance_ms`. The same client settings are
used against every broker (heartbeat.interval.ms=500, session.timeout.ms=6000).
"""

import multiprocessing as mp
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

VALUE = b"v" * 100


def member(bootstrap, group, topic, consumed, start, leave, owned):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": True, "heartbeat.interval.ms": 500, "session.timeout.ms": 6000,
                  "fetch.wait.max.ms": 100})
    c.subscribe([topic])
    start.wait()
    while not leave.is_set():
        msgs = c.consume(num_messages=10000, timeout=0.1)
        n = sum(1 for m in msgs if m.error() is None)
        if n:
            with consumed.get_lock():
                consumed.value += n
        owned.value = len(c.assignment())
    c.close()


def main():
    bootstrap = sys.argv[1]
    records = int(sys.argv[2]) if len(sys.argv) > 2 else 600_000
    topic = f"bench-groups-{uuid.uuid4().hex[:8]}"
    group = f"bench-group-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                  "queue.buffering.max.messages": 1_000_000})
    for i in range(records):
        while True:
            try:
                p.produce(topic, key=str(i % 1000).encode(), value=VALUE)
                break
            except BufferError:
                p.poll(0.05)
    p.flush(120)

    consumed = mp.Value("q", 0)
    start, leave = mp.Event(), [mp.Event() for _ in range(3)]
    owned = [mp.Value("i", 0) for _ in range(3)]
    procs = [mp.Process(target=member, args=(bootstrap, group, topic, consumed, start, leave[i], owned[i]))
             for i in range(3)]
    for pr in procs:
        pr.start()
    # Let the group form before timing consumption.
    deadline = time.time() + 60
    while sum(o.value for o in owned) < 6 and time.time() < deadline:
        time.sleep(0.01)
    t0 = time.time()
    start.set()
    while consumed.value < records and time.time() < t0 + 300:
        time.sleep(0.005)
    elapsed = time.time() - t0
    rate = consumed.value / elapsed

    # Rebalance: member 0 leaves; time until members 1 and 2 own all six partitions.
    t1 = time.time()
    leave[0].set()
    procs[0].join(30)
    while owned[1].value + owned[2].value < 6 and time.time() < t1 + 60:
        time.sleep(0.005)
    rebalance_ms = (time.time() - t1) * 1000
    for e in leave[1:]:
        e.set()
    for pr in procs[1:]:
        pr.join(30)
    print(f"{rate:.0f} {rate * (len(VALUE) + 4) / 1e6:.1f} {rebalance_ms:.0f}")


if __name__ == "__main__":
    main()
