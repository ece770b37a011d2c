"""Transactions with confluent-kafka (librdkafka) and Kafka's kafka-transactions tool:
what a transactional producer, read_committed / read_uncommitted consumers and an operator
observe on one strata-broker."""

import subprocess
import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from waiting import wait_for
from zk_support import REPO

KAFKA_CLASS = REPO / "tools" / "kafka-class.sh"


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        f.result(timeout=30)


def transactional_producer(bootstrap, transactional_id, **extra):
    config = {"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5}
    config.update(extra)
    producer = Producer(config)
    producer.init_transactions(60)
    return producer


def read(bootstrap, topic, partitions, isolation, expected, settle=2.0, timeout=60):
    """Every record of `topic` a consumer with `isolation` gets from the beginning: reads
    until `expected` records arrived, then `settle` seconds more to catch any extra."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-assign-only",
                         "enable.auto.commit": False, "isolation.level": isolation})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out = []
    deadline = time.time() + timeout
    settle_until = None
    while time.time() < deadline:
        for m in consumer.consume(num_messages=1000, timeout=0.2):
            if m.error() is None:
                out.append(m.value().decode())
        if len(out) >= expected:
            settle_until = settle_until or time.time() + settle
            if time.time() >= settle_until:
                break
    consumer.close()
    return out


def high_watermark(bootstrap, topic, partition, isolation):
    """The end offset a consumer with `isolation` is told (ListOffsets latest: the last
    stable offset for read_committed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-watermarks",
                         "isolation.level": isolation})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)[1]
    finally:
        consumer.close()


def stable_end(bootstrap, topic, partition):
    """The read_committed end offset, or None while the partition has no leader yet."""
    try:
        return high_watermark(bootstrap, topic, partition, "read_committed")
    except KafkaException:
        return None


def test_committed_records_are_read_once_and_aborted_ones_never(broker):
    create_topic(broker.bootstrap, "tx-orders", 3)
    producer = transactional_producer(broker.bootstrap, "orders-writer")
    for batch, outcome in [("a", "commit"), ("b", "abort"), ("c", "commit"), ("d", "abort")]:
        producer.begin_transaction()
        for i in range(300):
            producer.produce("tx-orders", key=f"k{i}", value=f"{batch}-{outcome}-{i}")
        producer.flush(30)  # the records are in the log before the transaction ends
        if outcome == "commit":
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)

    committed = read(broker.bootstrap, "tx-orders", 3, "read_committed", 600)
    assert len(committed) == 600, len(committed)
    assert sorted(committed) == sorted(f"{b}-commit-{i}" for b in "ac" for i in range(300))
    everything = read(broker.bootstrap, "tx-orders", 3, "read_uncommitted", 1200)
    assert len(everything) == 1200, len(everything)


def test_an_open_transaction_holds_back_read_committed_consumers(broker):
    create_topic(broker.bootstrap, "tx-held", 1)
    producer = transactional_producer(broker.bootstrap, "held-writer")
    producer.begin_transaction()
    for i in range(10):
        producer.produce("tx-held", value=f"txn-{i}")
    producer.flush(30)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(5):
        plain.produce("tx-held", value=f"plain-{i}")
    assert plain.flush(30) == 0

    # Offsets 0-9 are the open transaction, 10-14 the plain records behind it.
    assert high_watermark(broker.bootstrap, "tx-held", 0, "read_uncommitted") == 15
    assert high_watermark(broker.bootstrap, "tx-held", 0, "read_committed") == 0
    assert read(broker.bootstrap, "tx-held", 1, "read_committed", 0, settle=2.0) == []
    assert len(read(broker.bootstrap, "tx-held", 1, "read_uncommitted", 15)) == 15

    producer.commit_transaction(30)
    # The marker takes offset 15.
    wait_for(lambda: high_watermark(broker.bootstrap, "tx-held", 0, "read_committed") == 16,
             what="the last stable offset to pass the commit marker")
    got = read(broker.bootstrap, "tx-held", 1, "read_committed", 15)
    assert got == [f"txn-{i}" for i in range(10)] + [f"plain-{i}" for i in range(5)]


def test_a_new_producer_with_the_same_transactional_id_fences_the_old_one(broker):
    create_topic(broker.bootstrap, "tx-fenced", 1)
    zombie = transactional_producer(broker.bootstrap, "fenced-writer")
    zombie.begin_transaction()
    zombie.produce("tx-fenced", value="zombie")
    zombie.flush(30)

    # The new instance's InitProducerId aborts the zombie's transaction and bumps the epoch.
    successor = transactional_producer(broker.bootstrap, "fenced-writer")
    with pytest.raises(KafkaException) as raised:
        zombie.commit_transaction(30)
    error = raised.value.args[0]
    assert error.fatal() or error.txn_requires_abort(), error
    assert error.name() in ("_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"), error

    successor.begin_transaction()
    successor.produce("tx-fenced", value="successor")
    successor.commit_transaction(30)
    assert read(broker.bootstrap, "tx-fenced", 1, "read_committed", 1) == ["successor"]
    assert sorted(read(broker.bootstrap, "tx-fenced", 1, "read_uncommitted", 2)) == ["successor", "zombie"]


def test_consume_transform_produce_commits_offsets_with_the_output(broker):
    """Exactly once from an input topic to an output topic: every input record appears once
    in the output, though one transaction in the middle is aborted and redone."""
    create_topic(broker.bootstrap, "tx-in", 2)
    create_topic(broker.bootstrap, "tx-out", 2)
    source = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(1000):
        source.produce("tx-in", key=str(i % 7), value=f"in-{i}")
    assert source.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "copier",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed"})
    consumer.subscribe(["tx-in"])
    producer = transactional_producer(broker.bootstrap, "copier-writer")
    copied = 0
    aborted_once = False
    deadline = time.time() + 90
    while copied < 1000 and time.time() < deadline:
        batch = [m for m in consumer.consume(num_messages=150, timeout=1.0) if m.error() is None]
        if not batch:
            continue
        producer.begin_transaction()
        for m in batch:
            producer.produce("tx-out", key=m.key(), value=m.value().decode().replace("in-", "out-"))
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 30)
        if not aborted_once and copied >= 300:
            producer.abort_transaction(30)
            aborted_once = True
            # Back to the last committed position: the batch is processed again.
            for tp in consumer.committed(consumer.assignment(), timeout=10):
                consumer.seek(TopicPartition(tp.topic, tp.partition,
                                             tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
            continue
        producer.commit_transaction(30)
        copied += len(batch)
    assert aborted_once and copied == 1000, copied

    committed = consumer.committed([TopicPartition("tx-in", p) for p in range(2)], timeout=10)
    consumer.close()
    ends = [high_watermark(broker.bootstrap, "tx-in", p, "read_uncommitted") for p in range(2)]
    assert [tp.offset for tp in committed] == ends

    out = read(broker.bootstrap, "tx-out", 2, "read_committed", 1000)
    assert sorted(out) == sorted(f"out-{i}" for i in range(1000))


def test_a_transaction_left_open_by_a_crash_is_aborted_after_its_timeout(broker):
    create_topic(broker.bootstrap, "tx-crash", 1)
    producer = transactional_producer(broker.bootstrap, "crash-writer", **{"transaction.timeout.ms": 5000})
    producer.begin_transaction()
    for i in range(20):
        producer.produce("tx-crash", value=f"lost-{i}")
    producer.flush(30)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("tx-crash", value="after")
    assert plain.flush(30) == 0

    broker.kill()  # the producer never ends its transaction
    broker.restart()
    # Nothing ends the transaction but the coordinator's timeout: it aborts it, and the
    # last stable offset moves past the marker.
    wait_for(lambda: stable_end(broker.bootstrap, "tx-crash", 0) == 22,
             timeout=90, what=lambda: f"the abandoned transaction to be aborted "
                                      f"(stable end {stable_end(broker.bootstrap, 'tx-crash', 0)})")
    assert read(broker.bootstrap, "tx-crash", 1, "read_committed", 1) == ["after"]


def transactions_tool(bootstrap, *args):
    out = subprocess.run(
        ["bash", str(KAFKA_CLASS), "org.apache.kafka.tools.TransactionsCommand",
         "--bootstrap-server", bootstrap, *args],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, f"kafka-transactions {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return [line.split() for line in out.stdout.splitlines() if line.strip()]


def test_kafkas_transactions_tool_lists_describes_and_aborts(broker):
    """kafka-transactions (Kafka's TransactionsCommand) on an open transaction: list,
    describe, describe-producers and find-hanging see it as the coordinator and the
    partition leader hold it; `abort` ends it on the partition (WriteTxnMarkers from an
    admin client), which frees read_committed consumers."""
    create_topic(broker.bootstrap, "tx-tools", 1)
    producer = transactional_producer(broker.bootstrap, "tools-writer")
    producer.begin_transaction()
    for i in range(5):
        producer.produce("tx-tools", value=f"open-{i}")
    producer.flush(30)

    listed = transactions_tool(broker.bootstrap, "list")
    assert listed[0][:4] == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"], listed
    row = next(r for r in listed[1:] if r[0] == "tools-writer")
    assert row[1] == "0" and row[3] == "Ongoing", row
    producer_id = row[2]

    described = transactions_tool(broker.bootstrap, "describe", "--transactional-id", "tools-writer")
    header, values = described[0], described[1]
    fields = dict(zip(header, values))
    assert fields["ProducerId"] == producer_id and fields["TransactionState"] == "Ongoing", fields
    assert values[-1] == "tx-tools-0", values

    producers = transactions_tool(broker.bootstrap, "describe-producers", "--topic", "tx-tools", "--partition", "0")
    fields = dict(zip(producers[0], next(r for r in producers[1:] if r[0] == producer_id)))
    assert fields["CurrentTransactionStartOffset"] == "0", fields

    hanging = transactions_tool(broker.bootstrap, "find-hanging", "--broker-id", "0")
    assert not any(r and r[0] == "tx-tools" for r in hanging[1:]), hanging

    # The operator's way out of a transaction that would otherwise hold consumers back.
    assert high_watermark(broker.bootstrap, "tx-tools", 0, "read_committed") == 0
    transactions_tool(broker.bootstrap, "abort", "--topic", "tx-tools", "--partition", "0", "--start-offset", "0")
    wait_for(lambda: high_watermark(broker.bootstrap, "tx-tools", 0, "read_committed") == 6,
             what="the last stable offset to pass the abort marker")
    assert read(broker.bootstrap, "tx-tools", 1, "read_committed", 0) == []
