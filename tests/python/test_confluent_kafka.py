"""confluent-kafka (librdkafka from PyPI) against a real strata-broker."""

import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_checks import check_exactly_once, check_read_back
from strata_broker import peak_rss_mib

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        f.result(timeout=30)


def read_all(bootstrap, topic, partitions, expected, timeout=120):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-assign-only",
                         "enable.auto.commit": False, "enable.partition.eof": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out = []
    last_error = None
    deadline = time.time() + timeout
    while len(out) < expected and time.time() < deadline:
        for m in consumer.consume(num_messages=5000, timeout=0.5):
            if m.error() is not None:
                # librdkafka retries a failed fetch itself (a broker that just restarted may
                # fail one); what matters is that every record arrives in time.
                last_error = m.error()
                continue
            out.append((m.partition(), m.offset(), m.key().decode(), m.value().decode()))
    consumer.close()
    assert len(out) >= expected, f"read {len(out)} of {expected} records in {timeout}s; last error: {last_error}"
    return out


def test_keyed_records_every_codec_and_restart(broker):
    create_topic(broker.bootstrap, "ck-orders", 3)
    produced = []
    for codec in CODECS:
        errors = []
        producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec,
                             "acks": "all", "linger.ms": 5})
        for i in range(2000):
            key = f"customer-{i % 83}"
            value = f"{codec}-{i:05}-" + "z" * (i % 170)
            producer.produce("ck-orders", key=key, value=value,
                             on_delivery=lambda err, msg: err and errors.append(err))
            produced.append((key, value))
            producer.poll(0)
        assert producer.flush(60) == 0
        assert not errors, errors[:3]
    assert len(produced) == 10_000

    check_read_back(read_all(broker.bootstrap, "ck-orders", 3, len(produced)), produced)
    broker.stop()
    broker.restart()
    check_read_back(read_all(broker.bootstrap, "ck-orders", 3, len(produced)), produced)


def test_idempotent_producer_through_sigkill(broker):
    create_topic(broker.bootstrap, "ck-payments", 3)
    acknowledged = set()
    failed = []

    def on_delivery(err, msg):
        if err is None:
            acknowledged.add(msg.value().decode())
        else:
            failed.append(err)

    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5, "compression.type": "zstd",
                         "retry.backoff.ms": 50, "reconnect.backoff.ms": 50,
                         "reconnect.backoff.max.ms": 200, "message.timeout.ms": 60000})
    total = 20_000
    for i in range(total):
        producer.produce("ck-payments", key=f"k{i % 37}", value=f"payment-{i:06}", on_delivery=on_delivery)
        producer.poll(0)
        if i == total // 2:
            producer.poll(0.2)
            broker.kill()
    time.sleep(0.5)
    broker.restart()
    assert producer.flush(90) == 0
    assert len(acknowledged) > total // 2, failed[:3]
    records = read_all(broker.bootstrap, "ck-payments", 3, len(acknowledged))
    check_exactly_once(records, acknowledged)


def test_clients_cannot_write_the_internal_offsets_topic(broker):
    # A committed offset makes sure __consumer_offsets exists.
    create_topic(broker.bootstrap, "ck-internal", 1)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ck-internal-group",
                         "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition("ck-internal", 0, 0)], asynchronous=False)
    consumer.close()
    errors = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "retries": 0})
    producer.produce("__consumer_offsets", key=b"garbage", value=b"not group metadata",
                     on_delivery=lambda err, msg: errors.append(err))
    producer.flush(30)
    # As Kafka answers: INVALID_TOPIC_EXCEPTION (17), "Cannot append to internal topic".
    assert len(errors) == 1 and errors[0] is not None, errors
    assert errors[0].code() == KafkaError.TOPIC_EXCEPTION, errors[0]
    # The group's offsets are intact and the broker keeps serving.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ck-internal-group"})
    committed = consumer.committed([TopicPartition("ck-internal", 0)], timeout=30)
    consumer.close()
    assert committed[0].offset == 0


def test_a_compacted_topic_refuses_a_batch_inflating_past_64_mib_without_holding_it(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = NewTopic("ck-compacted-bomb", num_partitions=1, replication_factor=1,
                     config={"cleanup.policy": "compact"})
    for f in admin.create_topics([topic]).values():
        f.result(timeout=30)
    before = peak_rss_mib(broker.proc.pid)
    errors = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "zstd",
                         "message.max.bytes": 300_000_000, "acks": "all", "retries": 0})
    # 200 MiB of zeros: a few hundred KiB on the wire, more than the broker may inflate.
    producer.produce("ck-compacted-bomb", key=b"k", value=bytes(200 << 20),
                     on_delivery=lambda err, msg: errors.append(err))
    producer.flush(120)
    assert len(errors) == 1 and errors[0] is not None, errors
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errors[0]
    grew = peak_rss_mib(broker.proc.pid) - before
    assert grew < 64, f"the broker's peak RSS grew by {grew} MiB"
    # The topic and the broker go on: an ordinary keyed record is taken.
    ok = []
    producer.produce("ck-compacted-bomb", key=b"k", value=b"small",
                     on_delivery=lambda err, msg: ok.append(err))
    producer.flush(30)
    assert ok == [None], ok
