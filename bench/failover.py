"""Leader failover time of a three-broker cluster, as a client sees it.

    failover.py BOOTSTRAP TOPIC PIDS [CONTROLLER]

TOPIC is created with one partition on all three brokers, led by a broker that is not the
controller (CONTROLLER if given — KRaft's active controller, which Metadata does not name —
else the controller Metadata names): a dead controller is replaced by a different
mechanism (a session expiry, a Raft election), and this measures a partition leader's.
An idempotent acks=all producer (librdkafka) writes to partition 0 of TOPIC every 10 ms;
after a steady few seconds the partition's leader is SIGKILLed (its pid from PIDS, lines
"broker ID PID"), and the time from the kill to the acknowledgement of the first record
sent after it is printed, in ms, on the last line.
"""

import os
import signal
import sys
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    bootstrap, topic, pids_file = sys.argv[1:4]
    pids = {}
    for line in open(pids_file):
        _, broker, pid = line.split()
        pids[int(broker)] = int(pid)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if len(sys.argv) > 4:
        controller = int(sys.argv[4])
    else:
        controller = admin.list_topics(timeout=10).controller_id
    brokers = sorted(pids)
    victim = next(b for b in brokers if b != controller)
    assignment = [[victim] + [b for b in brokers if b != victim]]
    new = NewTopic(topic, num_partitions=1, replica_assignment=assignment)
    admin.create_topics([new], request_timeout=30)[topic].result(timeout=60)
    time.sleep(2)
    sent = {}
    acks = []
    lock = threading.Lock()

    def delivered(err, msg):
        if err is None:
            with lock:
                acks.append((sent[int(msg.value())], time.monotonic()))

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 0,
        "message.timeout.ms": 300000,
    })
    stop = threading.Event()

    def produce():
        i = 0
        while not stop.is_set():
            with lock:
                sent[i] = time.monotonic()
            producer.produce(topic, value=b"%d" % i, partition=0, on_delivery=delivered)
            producer.poll(0.01)
            i += 1

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    time.sleep(5)
    leader = admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader
    if leader != victim:
        sys.exit(f"partition 0 of {topic} is led by {leader}, not {victim}")
    killed = time.monotonic()
    os.kill(pids[leader], signal.SIGKILL)
    deadline = killed + 120
    after = None
    while time.monotonic() < deadline and after is None:
        time.sleep(0.01)
        with lock:
            after = next((acked for sent_at, acked in acks if sent_at > killed), None)
    stop.set()
    thread.join()
    producer.flush(30)
    if after is None:
        print("no acknowledged write within 120 s")
    else:
        print(f"{(after - killed) * 1000:.0f} ms (leader {leader} killed)")


if __name__ == "__main__":
    main()
