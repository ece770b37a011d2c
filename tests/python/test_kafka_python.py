"""kafka-python against a real strata-broker."""

import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from kafka_checks import check_exactly_once, check_read_back

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def create_topic(bootstrap, name, partitions):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kp-admin")
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    admin.close()


def read_all(bootstrap, topic, partitions, expected, timeout=120):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=2000)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out = []
    deadline = time.time() + timeout
    while len(out) < expected and time.time() < deadline:
        batch = consumer.poll(timeout_ms=500, max_records=5000)
        for tp, messages in batch.items():
            for m in messages:
                out.append((m.partition, m.offset, m.key.decode(), m.value.decode()))
    consumer.close()
    return out


def test_keyed_records_every_codec_and_restart(broker):
    create_topic(broker.bootstrap, "kp-orders", 3)
    produced = []
    for codec in CODECS:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, acks="all",
                                 linger_ms=5)
        futures = []
        for i in range(2000):
            key = f"customer-{i % 89}"
            value = f"{codec}-{i:05}-" + "x" * (i % 150)
            futures.append(producer.send("kp-orders", key=key.encode(), value=value.encode()))
            produced.append((key, value))
        for f in futures:
            f.get(timeout=60)
        producer.close()
    assert len(produced) == 10_000

    check_read_back(read_all(broker.bootstrap, "kp-orders", 3, len(produced)), produced)
    broker.stop()
    broker.restart()
    check_read_back(read_all(broker.bootstrap, "kp-orders", 3, len(produced)), produced)


def test_idempotent_producer_through_sigkill(broker):
    create_topic(broker.bootstrap, "kp-payments", 3)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all",
                             retries=1000, retry_backoff_ms=50, reconnect_backoff_ms=50,
                             reconnect_backoff_max_ms=200, delivery_timeout_ms=60000, linger_ms=5,
                             compression_type="gzip")
    total = 10_000
    futures = []
    for i in range(total):
        value = f"payment-{i:06}"
        futures.append((value, producer.send("kp-payments", key=f"k{i % 29}".encode(), value=value.encode())))
        if i == total // 2:
            time.sleep(0.2)
            broker.kill()
    time.sleep(0.5)
    broker.restart()
    acknowledged = set()
    failures = 0
    for value, f in futures:
        try:
            f.get(timeout=90)
            acknowledged.add(value)
        except Exception as e:  # a record the client gave up on is simply not acknowledged
            failures += 1
            last_error = e
    producer.close()
    assert len(acknowledged) > total // 2, f"{failures} failures, last: {last_error!r}"
    records = read_all(broker.bootstrap, "kp-payments", 3, len(acknowledged))
    check_exactly_once(records, acknowledged)
