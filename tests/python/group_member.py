"""A consumer-group member on confluent-kafka or kafka-python, for the mixed-client tests.

    python group_member.py confluent|kafka-python BOOTSTRAP GROUP TOPIC [key=value ...]

Same line protocol as broker/examples/group_member.rs: prints records, commits after
processing each poll, prints commits and assignment changes as JSON lines; "stop" on
stdin (or EOF) closes the consumer, leaving the group.
"""

import json
import sys
import threading

stop = threading.Event()


def watch_stdin():
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()


def emit(**event):
    print(json.dumps(event), flush=True)


def run_confluent(bootstrap, group, topic, extra):
    from confluent_kafka import Consumer, TopicPartition

    conf = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest"}
    conf.update(extra)
    c = Consumer(conf)
    c.subscribe([topic])
    last = None
    while not stop.is_set():
        msgs = c.consume(num_messages=100, timeout=0.1)
        offsets = {}
        for m in msgs:
            if m.error():
                emit(event="error", error=str(m.error()))
                continue
            emit(event="record", partition=m.partition(), offset=m.offset(), value=m.value().decode())
            offsets[m.partition()] = m.offset() + 1
        if offsets:
            try:
                c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
                for p, o in offsets.items():
                    emit(event="committed", partition=p, offset=o)
            except Exception as e:  # the error the client sees is what the test checks
                emit(event="commit_failed", error=str(e))
        assignment = sorted(tp.partition for tp in c.assignment())
        if assignment != last:
            emit(event="assigned", partitions=assignment)
            last = assignment
    c.close()
    emit(event="closed")


def run_kafka_python(bootstrap, group, topic, extra):
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    conf = {"bootstrap_servers": bootstrap, "group_id": group, "enable_auto_commit": False,
            "auto_offset_reset": "earliest"}
    for k, v in extra.items():
        conf[k.replace(".", "_")] = int(v) if v.lstrip("-").isdigit() else v
    c = KafkaConsumer(**conf)
    c.subscribe([topic])
    last = None
    while not stop.is_set():
        batch = c.poll(timeout_ms=100, max_records=100)
        offsets = {}
        for tp, messages in batch.items():
            for m in messages:
                emit(event="record", partition=m.partition, offset=m.offset, value=m.value.decode())
                offsets[tp] = m.offset + 1
        if offsets:
            try:
                c.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
                for tp, o in offsets.items():
                    emit(event="committed", partition=tp.partition, offset=o)
            except Exception as e:
                emit(event="commit_failed", error=f"{type(e).__name__}: {e}")
        assignment = sorted(tp.partition for tp in c.assignment())
        if assignment != last:
            emit(event="assigned", partitions=assignment)
            last = assignment
    c.close()
    emit(event="closed")


if __name__ == "__main__":
    client, bootstrap, group, topic = sys.argv[1:5]
    extra = dict(kv.split("=", 1) for kv in sys.argv[5:])
    threading.Thread(target=watch_stdin, daemon=True).start()
    {"confluent": run_confluent, "kafka-python": run_kafka_python}[client](bootstrap, group, topic, extra)
