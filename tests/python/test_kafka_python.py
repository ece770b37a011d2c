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


def test_incremental_fetch_sessions_on_many_partitions(caplog):
    """kafka-python fetches in a KIP-227 session: after the first full fetch it names only
    the partitions whose position moved, and reads every record of 60 partitions written
    in rounds to a few of them at a time, in order, without the session ever failing."""
    import logging

    from strata_broker import Broker, free_port, metric

    metrics_port = free_port()
    broker = Broker(extra={"metrics.port": str(metrics_port)})
    caplog.set_level(logging.INFO, logger="kafka.consumer.fetcher")
    try:
        partitions = 60
        create_topic(broker.bootstrap, "kp-sessions", partitions)
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                                 enable_auto_commit=False, fetch_max_wait_ms=100)
        tps = [TopicPartition("kp-sessions", p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        sent = {p: [] for p in range(partitions)}
        got = {p: [] for p in range(partitions)}
        for round_ in range(8):
            for i in range(20):
                p = (round_ * 7 + i * 13) % partitions
                value = f"r{round_}-{i}"
                producer.send("kp-sessions", value=value.encode(), partition=p)
                sent[p].append(value)
            producer.flush()
            deadline = time.time() + 30
            while got != sent and time.time() < deadline:
                for tp, messages in consumer.poll(timeout_ms=200).items():
                    got[tp.partition].extend(m.value.decode() for m in messages)
            assert got == sent, f"round {round_}: not every record read back in order"
        assert metric(metrics_port, "kafka_server_fetchsessioncache_numincrementalfetchsessions") == 1
        assert metric(metrics_port,
                      "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached") == partitions
        handlers = consumer._fetcher._session_handlers
        assert len(handlers) == 1
        (handler,) = handlers.values()
        assert handler.next_metadata.session_id != 0
        # Epoch 1 after the full fetch, then one more per incremental fetch: each of rounds
        # 1-7 needed at least one.
        assert handler.next_metadata.epoch >= 8, "the client kept fetching incrementally"
        consumer.close()
        producer.close()
        failures = [r.getMessage() for r in caplog.records
                    if "unable to process the fetch request" in r.getMessage()
                    or "invalid" in r.getMessage()]
        assert failures == []
    finally:
        broker.close()
