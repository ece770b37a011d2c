"""TLS and SASL listeners, as Kafka's clients see them: librdkafka (confluent-kafka),
kafka-python, and Kafka 3.9's own tools (kafka-configs for SCRAM users, the console
producer and consumer over SASL_SSL with a PEM trust store).

One broker listens on four listeners — PLAINTEXT, SSL (client certificates requested),
SASL_PLAINTEXT and SASL_SSL — with certificates made by `openssl` for the test. Users:
PLAIN's from the listener's JAAS config; SCRAM's created through AlterUserScramCredentials
and kept in the broker's metadata like Kafka keeps them in /config/users.
"""

import os
import re
import socket
import struct
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from certs import make_certificates
from kafka39 import KAFKA_VERSION, kafka_home
from strata_broker import Broker, free_port, metric
from strata_cluster import StrataCluster, consume_all
from zk_support import REPO, Ensemble
from waiting import wait_for

PLAIN_JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'user_admin="admin-secret" user_bob="bob-secret";'
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


class SecureBroker:
    def __init__(self, certs, reauth_ms=None, more=None):
        self.ports = {name: free_port() for name in ("SSL", "SASL_PLAINTEXT", "SASL_SSL")}
        self.metrics_port = free_port()
        self.keystore = certs / "live-server.pem"
        self.keystore.write_text((certs / "server.pem").read_text())
        extra = {
            "metrics.port": str(self.metrics_port),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(certs / "ca.pem"),
            "listener.name.ssl.ssl.client.auth": "requested",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
            "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        }
        if reauth_ms:
            extra["listener.name.sasl_plaintext.connections.max.reauth.ms"] = str(reauth_ms)
        extra.update(more or {})
        plaintext = free_port()
        extra["listeners"] = f"PLAINTEXT://127.0.0.1:{plaintext}," + ",".join(
            f"{name}://127.0.0.1:{port}" for name, port in self.ports.items()
        )
        self.broker = Broker(extra, port=plaintext)

    def bootstrap(self, listener):
        if listener == "PLAINTEXT":
            return self.broker.bootstrap
        return f"127.0.0.1:{self.ports[listener]}"

    def metric(self, name):
        return metric(self.metrics_port, name) or 0


@pytest.fixture
def secure(certs, request):
    b = SecureBroker(certs)
    yield b
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print("--- broker log ---\n" + b.broker.log())
    b.broker.close()


def client_config(broker, listener, certs, **extra):
    config = {"bootstrap.servers": broker.bootstrap(listener), "security.protocol": listener}
    if "SSL" in listener and certs is not None:
        config["ssl.ca.location"] = str(certs / "ca.pem")
    config.update(extra)
    return config


def round_trip(config, topic, n=50):
    """Produces n records and reads them back with the same settings."""
    producer = Producer(config)
    for i in range(n):
        producer.produce(topic, key=str(i).encode(), value=f"record-{i}".encode())
    assert producer.flush(30) == 0, "records were not delivered"
    consumer = Consumer(dict(config, **{"group.id": f"g-{uuid.uuid4()}", "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    seen = []
    deadline = time.time() + 60
    try:
        while len(seen) < n and time.time() < deadline:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                seen.append(m.value().decode())
    finally:
        consumer.close()
    assert sorted(seen) == sorted(f"record-{i}" for i in range(n))


def auth_error(config, topic="t"):
    """The error a client with `config` gets, or None if it is served."""
    errors = []
    config = dict(config, error_cb=lambda e: errors.append(e))
    producer = Producer(config)
    producer.produce(topic, b"x")
    producer.flush(5)
    wait_for(lambda: errors, timeout=30, what="an error from the client")
    return errors[0]


def kafka_tool(main_class, *args, **run):
    """One of Kafka 3.9's command line tools (its main class), as its bin/ script runs it."""
    kafka_home()
    return subprocess.run(
        ["bash", str(REPO / "tools" / "kafka-class.sh"), main_class, *map(str, args)],
        env=dict(os.environ, KAFKA_VERSION=KAFKA_VERSION), check=True, capture_output=True,
        timeout=120, **run,
    )


def add_scram_user(broker, user, password):
    """kafka-configs through the PLAINTEXT listener."""
    kafka_tool(
        "kafka.admin.ConfigCommand", "--bootstrap-server", broker.bootstrap("PLAINTEXT"), "--alter",
        "--add-config", f"SCRAM-SHA-256=[iterations=8192,password={password}],SCRAM-SHA-512=[password={password}]",
        "--entity-type", "users", "--entity-name", user,
    )


def test_ssl_listener_serves_librdkafka_and_refuses_plaintext(secure, certs):
    topic = f"ssl-{uuid.uuid4().hex[:8]}"
    round_trip(client_config(secure, "SSL", certs), topic)
    # A client certificate is requested, not required: one that offers it is served too.
    round_trip(
        client_config(
            secure, "SSL", certs,
            **{"ssl.certificate.location": str(certs / "client.crt"), "ssl.key.location": str(certs / "client.key")},
        ),
        topic,
    )
    # A client that does not trust the broker's CA refuses the broker.
    err = auth_error(client_config(secure, "SSL", certs, **{"ssl.ca.location": str(certs / "other-ca.pem")}))
    assert err.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), err
    # A plaintext client on the TLS port is cut off; the broker goes on serving.
    before = secure.metric("strata_broker_tls_handshake_failures_total")
    auth_error({"bootstrap.servers": secure.bootstrap("SSL")})
    wait_for(lambda: secure.metric("strata_broker_tls_handshake_failures_total") > before,
             what="the failed handshake counted")
    round_trip(client_config(secure, "SSL", certs), topic, n=5)


def test_transactions_over_ssl_and_sasl_ssl(secure, certs):
    """A transactional producer commits and aborts over SSL and over SASL_SSL (SCRAM);
    read_committed consumers on both listeners read only the committed records."""
    add_scram_user(secure, "alice", "alice-secret")
    scram = {"sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": "alice-secret"}
    for listener, extra in (("SSL", {}), ("SASL_SSL", scram)):
        topic = f"txn-{listener.lower()}-{uuid.uuid4().hex[:6]}"
        config = client_config(secure, listener, certs, **extra)
        producer = Producer(dict(config, **{"transactional.id": f"{topic}-writer"}))
        producer.init_transactions(30)
        for outcome in ("commit", "abort", "commit"):
            producer.begin_transaction()
            for i in range(10):
                producer.produce(topic, f"{outcome}-{i}".encode())
            if outcome == "commit":
                producer.commit_transaction(30)
            else:
                producer.abort_transaction(30)
        consumer = Consumer(dict(config, **{"group.id": f"g-{uuid.uuid4()}", "auto.offset.reset": "earliest",
                                            "isolation.level": "read_committed"}))
        consumer.subscribe([topic])
        seen = []
        deadline = time.time() + 60
        try:
            while len(seen) < 20 and time.time() < deadline:
                m = consumer.poll(0.5)
                if m is not None and not m.error():
                    seen.append(m.value().decode())
            # A moment more for anything aborted to show up.
            m = consumer.poll(2)
            if m is not None and not m.error():
                seen.append(m.value().decode())
        finally:
            consumer.close()
        assert sorted(seen) == sorted(f"commit-{i}" for i in range(10) for _ in range(2)), (listener, seen)


def openssl_cipher(address, certs, *options):
    """The cipher suite `openssl s_client` negotiates with these options, or None when
    the handshake fails."""
    out = subprocess.run(
        ["openssl", "s_client", "-connect", address, "-CAfile", str(certs / "ca.pem"), *options],
        input=b"", capture_output=True, timeout=30,
    )
    found = re.search(r"Cipher is (\S+)", out.stdout.decode(errors="replace"))
    return found.group(1) if found and found.group(1) != "(NONE)" else None


def test_cipher_suites_are_the_ones_configured(certs):
    """`ssl.cipher.suites` on one listener (IANA names, as for Kafka): openssl gets only
    those suites there, the other TLS listener keeps the defaults, librdkafka is served."""
    b = SecureBroker(certs, more={
        "listener.name.ssl.ssl.cipher.suites": "TLS_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    })
    try:
        ssl = b.bootstrap("SSL")
        assert openssl_cipher(ssl, certs, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384") == "TLS_AES_256_GCM_SHA384"
        assert openssl_cipher(ssl, certs, "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256") is None
        assert openssl_cipher(ssl, certs, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384") == \
            "ECDHE-ECDSA-AES256-GCM-SHA384"
        assert openssl_cipher(ssl, certs, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256") is None
        other = b.bootstrap("SASL_SSL")
        assert openssl_cipher(other, certs, "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256") == \
            "TLS_AES_128_GCM_SHA256"
        round_trip(client_config(b, "SSL", certs), f"ciphers-{uuid.uuid4().hex[:8]}", n=5)
    finally:
        b.broker.close()


def test_plain_users_from_the_jaas_config(secure, certs):
    good = {"sasl.mechanisms": "PLAIN", "sasl.username": "bob", "sasl.password": "bob-secret"}
    for listener in ("SASL_PLAINTEXT", "SASL_SSL"):
        round_trip(client_config(secure, listener, certs, **good), f"plain-{uuid.uuid4().hex[:8]}")
    before = secure.metric("strata_broker_failed_authentication_total")
    bad = dict(good, **{"sasl.password": "nope"})
    err = auth_error(client_config(secure, "SASL_PLAINTEXT", certs, **bad))
    assert err.code() == KafkaError._AUTHENTICATION, err
    assert "invalid credentials with SASL mechanism PLAIN" in err.str()
    assert secure.metric("strata_broker_failed_authentication_total") > before
    # A mechanism this listener does not enable (its own sasl.enabled.mechanisms) is
    # refused, with the list of those it does.
    sha256 = {"sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": "bob", "sasl.password": "x"}
    err = auth_error(client_config(secure, "SASL_PLAINTEXT", certs, **sha256))
    assert "PLAIN, SCRAM-SHA-512" in err.str() or "PLAIN,SCRAM-SHA-512" in err.str(), err
    # Authentication comes first: SASL listeners serve nothing to a client without it.
    err = auth_error({"bootstrap.servers": secure.bootstrap("SASL_PLAINTEXT")})
    assert err.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), err


def test_scram_users_made_with_kafka_configs(secure, certs):
    add_scram_user(secure, "alice", "alice-secret")
    admin = AdminClient({"bootstrap.servers": secure.bootstrap("PLAINTEXT")})
    described = admin.describe_user_scram_credentials(["alice"])["alice"].result()
    infos = {(i.mechanism, i.iterations) for i in described.scram_credential_infos}
    assert infos == {(ScramMechanism.SCRAM_SHA_256, 8192), (ScramMechanism.SCRAM_SHA_512, 4096)}

    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        config = {"sasl.mechanisms": mechanism, "sasl.username": "alice", "sasl.password": "alice-secret"}
        round_trip(client_config(secure, "SASL_SSL", certs, **config), f"scram-{uuid.uuid4().hex[:8]}", n=20)
        err = auth_error(client_config(secure, "SASL_SSL", certs, **dict(config, **{"sasl.password": "x"})))
        assert err.code() == KafkaError._AUTHENTICATION, err

    # Credentials through librdkafka's admin API too; a deleted one no longer logs in.
    futures = admin.alter_user_scram_credentials(
        [
            UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"carol-pw"),
            UserScramCredentialDeletion("alice", ScramMechanism.SCRAM_SHA_512),
        ]
    )
    for f in futures.values():
        f.result()
    carol = {"sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "carol", "sasl.password": "carol-pw"}
    round_trip(client_config(secure, "SASL_PLAINTEXT", certs, **carol), f"carol-{uuid.uuid4().hex[:8]}", n=5)
    gone = {"sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": "alice-secret"}
    assert auth_error(client_config(secure, "SASL_PLAINTEXT", certs, **gone)).code() == KafkaError._AUTHENTICATION
    everyone = admin.describe_user_scram_credentials()
    users = {u: f.result() for u, f in everyone.items()} if isinstance(everyone, dict) else {
        d.user: d for d in everyone.result().values()
    }
    assert set(users) == {"alice", "carol"}
    with pytest.raises(KafkaException):
        admin.alter_user_scram_credentials(
            [UserScramCredentialDeletion("nobody", ScramMechanism.SCRAM_SHA_256)]
        )["nobody"].result()


def test_kafka_python_and_the_java_console_clients(secure, certs, tmp_path):
    from kafka import KafkaConsumer, KafkaProducer

    add_scram_user(secure, "dave", "dave-secret")
    topic = f"java-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": secure.bootstrap("PLAINTEXT")})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    common = dict(
        bootstrap_servers=secure.bootstrap("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="dave", sasl_plain_password="dave-secret",
    )
    producer = KafkaProducer(**common)
    for i in range(10):
        producer.send(topic, f"py-{i}".encode())
    producer.flush(30)
    producer.close()

    props = tmp_path / "client.properties"
    props.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="dave" password="dave-secret";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={certs / 'ca.pem'}\n"
    )
    kafka_tool(
        "kafka.tools.ConsoleProducer", "--bootstrap-server", secure.bootstrap("SASL_SSL"),
        "--topic", topic, "--producer.config", props,
        input="".join(f"java-{i}\n" for i in range(10)).encode(),
    )
    out = kafka_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", secure.bootstrap("SASL_SSL"),
        "--topic", topic, "--from-beginning", "--max-messages", "20", "--timeout-ms", "60000",
        "--consumer.config", props,
    )
    lines = out.stdout.decode().split()
    assert sorted(lines) == sorted([f"py-{i}" for i in range(10)] + [f"java-{i}" for i in range(10)])

    # kafka-topics over SSL with a client certificate (a PEM key store of key and chain).
    mtls = tmp_path / "mtls.properties"
    mtls.write_text(
        "security.protocol=SSL\n"
        f"ssl.keystore.type=PEM\nssl.keystore.location={certs / 'client.pem'}\n"
        f"ssl.truststore.type=PEM\nssl.truststore.location={certs / 'ca.pem'}\n"
    )
    listed = kafka_tool("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", secure.bootstrap("SSL"),
                        "--command-config", mtls, "--list").stdout.decode()
    assert topic in listed.split(), listed

    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=20000,
                             group_id=f"g-{uuid.uuid4()}", **common)
    values = []
    for m in consumer:
        values.append(m.value.decode())
        if len(values) == 20:
            break
    consumer.close()
    assert len(values) == 20


def test_sessions_are_reauthenticated_and_certificates_renewed(certs):
    b = SecureBroker(certs, reauth_ms=2000)
    try:
        config = client_config(b, "SASL_PLAINTEXT", certs, **{
            "sasl.mechanisms": "PLAIN", "sasl.username": "admin", "sasl.password": "admin-secret"})
        producer = Producer(config)
        topic = f"reauth-{uuid.uuid4().hex[:8]}"
        delivered = []
        start = b.metric("strata_broker_successful_authentication_total")
        # Records keep flowing across three session lifetimes; librdkafka re-authenticates
        # on its connections (KIP-368) instead of being cut off.
        deadline = time.time() + 7
        i = 0
        while time.time() < deadline:
            producer.produce(topic, f"{i}".encode(), on_delivery=lambda e, m: delivered.append(e))
            producer.poll(0.1)
            i += 1
        assert producer.flush(30) == 0
        assert len(delivered) == i and all(e is None for e in delivered)
        connections = b.metric("strata_broker_connections_total")
        authentications = b.metric("strata_broker_successful_authentication_total") - start
        assert authentications > connections, (authentications, connections)

        # A renewed certificate (from another CA) is served to new connections without a
        # restart; clients that trust only the old CA are refused from then on.
        b.keystore.write_text((certs / "renewed.pem").read_text())
        renewed = client_config(b, "SSL", certs, **{"ssl.ca.location": str(certs / "other-ca.pem")})
        wait_for(lambda: try_round_trip(renewed), timeout=30, what="the renewed certificate in use")
        err = auth_error(client_config(b, "SSL", certs))
        assert err.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), err
    finally:
        b.broker.close()


def try_round_trip(config):
    try:
        producer = Producer(dict(config, **{"message.timeout.ms": 3000}))
        producer.produce(f"renew-{uuid.uuid4().hex[:8]}", b"x")
        return producer.flush(5) == 0
    except KafkaException:
        return False


def test_misconfigured_listeners_fail_with_their_reason(tmp_path):
    cases = [
        ({"listeners": "SASL_PLAINTEXT://127.0.0.1:{p}", "inter.broker.listener.name": "SASL_PLAINTEXT"},
         "GSSAPI (Kafka's default) is not supported"),
        ({"listeners": "SSL://127.0.0.1:{p}", "inter.broker.listener.name": "SSL",
          "ssl.keystore.type": "PEM", "ssl.keystore.location": str(tmp_path / "missing.pem")},
         str(tmp_path / "missing.pem")),
        ({"listeners": "SSL://127.0.0.1:{p}", "inter.broker.listener.name": "SSL",
          "ssl.keystore.type": "PEM", "ssl.keystore.location": str(tmp_path / "missing.pem"),
          "ssl.cipher.suites": "TLS_AES_256_GCM_SHA384,TLS_RSA_WITH_AES_128_CBC_SHA"},
         "ssl.cipher.suites: TLS_RSA_WITH_AES_128_CBC_SHA is not supported"),
    ]
    for props, expected in cases:
        port = free_port()
        config = tmp_path / "server.properties"
        config.write_text(
            "".join(f"{k}={v.format(p=port)}\n" for k, v in props.items())
            + f"log.dirs={tmp_path / 'logs'}\nmetrics.port=0\n"
        )
        from strata_broker import BIN_DIR

        out = subprocess.run([str(BIN_DIR / "strata-broker"), "--config", str(config)],
                             capture_output=True, timeout=60)
        assert out.returncode != 0
        said = out.stdout.decode() + out.stderr.decode()
        assert expected in said, said


def test_brokers_replicate_over_a_sasl_ssl_inter_broker_listener(certs, tmp_path):
    """Replica fetchers, the controller's requests and requests to the controller all log
    in over TLS with client certificates required, and SASL PLAIN on top."""
    port, internal = free_port(), free_port()
    ensemble = Ensemble(tmp_path / "zk", n=1)
    cluster = None
    try:
        cluster = StrataCluster(tmp_path / "brokers", ensemble, port=port, extra={
            "listeners": f"PLAINTEXT://{{host}}:{port},INTERNAL://{{host}}:{internal}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL",
            "inter.broker.listener.name": "INTERNAL",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "listener.name.internal.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.internal.plain.sasl.jaas.config":
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                'username="broker" password="broker-secret" user_broker="broker-secret" '
                'user_alice="alice-secret";',
            # Brokers (User:broker) and, for the test's own admin calls, the PLAINTEXT
            # listener's anonymous clients are super users; alice needs ACLs.
            "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
            "super.users": "User:broker;User:ANONYMOUS",
            "listener.name.internal.ssl.client.auth": "required",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(certs / "server.pem"),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(certs / "ca.pem"),
        })
        cluster.create_topic("secured", partitions=3, rf=3)
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
        errors = []
        for i in range(300):
            producer.produce("secured", key=str(i).encode(), value=str(i).encode(),
                             on_delivery=lambda e, m: e and errors.append(e))
        assert producer.flush(60) == 0 and not errors, errors[:3]
        # The followers keep up over the secured listener: every ISR stays full, and a
        # leader's death loses nothing acknowledged.
        cluster.wait_partition("secured", lambda ps: all(len(p[2]) == 3 for p in ps.values()),
                               what="full ISRs")
        leader = cluster.metadata("secured")[2][0][0]
        cluster.kill(leader)
        cluster.wait_partition("secured", lambda ps: all(p[0] not in (-1, leader) for p in ps.values()),
                               what="new leaders")
        # A new leader serves up to its high watermark, which catches up once the other
        # follower fetched from it: read until every acknowledged record is there.
        survivors = ",".join(cluster.addr(i) for i in cluster.running())
        seen = []

        def all_read():
            seen[:] = sorted(int(v) for v in consume_all(survivors, "secured").values())
            return seen == list(range(300))

        wait_for(all_read, what=lambda: f"all 300 records; read {len(seen)}")
        # ACLs written through one broker reach the others through ZooKeeper.
        survivor = cluster.running()[-1]
        alice = {
            "bootstrap.servers": f"{cluster.host(survivor)}:{internal}", "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(certs / "ca.pem"), "sasl.mechanisms": "PLAIN",
            "sasl.username": "alice", "sasl.password": "alice-secret",
            "ssl.certificate.location": str(certs / "client.crt"), "ssl.key.location": str(certs / "client.key"),
        }
        assert [e.code() for e in produce_errors(alice, "secured", 1)] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
        from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType
        via = AdminClient({"bootstrap.servers": cluster.addr(cluster.running()[0])})
        binding = AclBinding(ResourceType.TOPIC, "secured", ResourcePatternType.LITERAL, "User:alice", "*",
                             AclOperation.WRITE, AclPermissionType.ALLOW)
        for f in via.create_acls([binding]).values():
            f.result()
        wait_for(lambda: produce_errors(alice, "secured", 1) == [None], what="alice's ACL on every broker")
        # The surviving brokers saw the others log in.
        for i in cluster.running():
            logins = metric(cluster.metrics_port, "strata_broker_successful_authentication_total", cluster.host(i))
            assert logins and logins > 0, (i, logins)
    finally:
        if cluster:
            cluster.close()
        ensemble.close()


class AclBroker(SecureBroker):
    """A broker with Kafka's ACL authorizer: `admin` is a super user, everyone else
    needs ACLs. Client certificates are required on SSL and mapped to their CN."""

    def __init__(self, certs):
        super().__init__(certs, more={
            "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
            "super.users": "User:admin",
            "listener.name.ssl.ssl.client.auth": "required",
            "listener.name.ssl.ssl.principal.mapping.rules": r"RULE:^OU=test,CN=(.*?)$/$1/,DEFAULT",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                'user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";'
            ),
        })


def plain(broker, user, **extra):
    return client_config(broker, "SASL_PLAINTEXT", None, **{
        "sasl.mechanisms": "PLAIN", "sasl.username": user, "sasl.password": f"{user}-secret", **extra})


def kafka_acls(broker, tmp_path, *args):
    """kafka-acls as the super user, over SASL_PLAINTEXT."""
    props = tmp_path / "admin.properties"
    props.write_text(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="admin" password="admin-secret";\n'
    )
    return kafka_tool("kafka.admin.AclCommand", "--bootstrap-server", broker.bootstrap("SASL_PLAINTEXT"),
                      "--command-config", props, *args).stdout.decode()


def produce_errors(config, topic, n=5):
    errors = []
    producer = Producer(dict(config, **{"message.timeout.ms": 20000}))
    for i in range(n):
        producer.produce(topic, f"{i}".encode(), on_delivery=lambda e, m: errors.append(e))
    producer.flush(30)
    return errors


def consume(config, topic, group, n, timeout=30):
    """(values, first error) of a group consumer reading `topic` from the start."""
    consumer = Consumer(dict(config, **{"group.id": group, "auto.offset.reset": "earliest",
                                        "enable.auto.commit": False}))
    consumer.subscribe([topic])
    values, error = [], None
    deadline = time.time() + timeout
    try:
        while len(values) < n and time.time() < deadline and error is None:
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() not in (KafkaError._PARTITION_EOF,):
                    error = m.error()
                continue
            values.append(m.value().decode())
    finally:
        consumer.close()
    return values, error


@pytest.fixture
def acl_broker(certs, request):
    b = AclBroker(certs)
    yield b
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print("--- broker log ---\n" + b.broker.log())
    b.broker.close()


def test_acls_from_kafka_acls_decide_what_clients_may_do(acl_broker, certs, tmp_path):
    b = acl_broker
    admin = AdminClient(plain(b, "admin"))
    for t in ("orders", "secret", "logs-app"):
        admin.create_topics([NewTopic(t, 1, 1)])[t].result()
    # Nobody but the super user may do anything yet; not even see the topics.
    assert [e.code() for e in produce_errors(plain(b, "bob"), "orders", 1)] == [
        KafkaError.TOPIC_AUTHORIZATION_FAILED]
    assert "orders" not in AdminClient(plain(b, "bob")).list_topics(timeout=10).topics

    kafka_acls(b, tmp_path, "--add", "--allow-principal", "User:bob", "--producer", "--topic", "orders")
    kafka_acls(b, tmp_path, "--add", "--allow-principal", "User:alice", "--consumer",
               "--topic", "orders", "--group", "app")
    kafka_acls(b, tmp_path, "--add", "--allow-principal", "User:alice", "--operation", "Read",
               "--topic", "logs-", "--resource-pattern-type", "prefixed")
    listed = kafka_acls(b, tmp_path, "--list", "--topic", "orders")
    assert "User:bob" in listed and "User:alice" in listed and "WRITE" in listed, listed

    assert produce_errors(plain(b, "bob"), "orders") == [None] * 5
    # alice may read orders in group app, but not write, nor read in another group, nor
    # see the topic she has no ACL for.
    assert [e.code() for e in produce_errors(plain(b, "alice"), "orders", 1)] == [
        KafkaError.TOPIC_AUTHORIZATION_FAILED]
    values, error = consume(plain(b, "alice"), "orders", "app", 5)
    assert (sorted(values), error) == ([str(i) for i in range(5)], None)
    _, error = consume(plain(b, "alice"), "orders", "other", 5)
    assert error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, error
    topics = AdminClient(plain(b, "alice")).list_topics(timeout=10).topics
    assert "orders" in topics and "logs-app" in topics and "secret" not in topics
    # The same ACLs hold for alice's client certificate (CN mapped by the rules).
    mtls = client_config(b, "SSL", certs, **{
        "ssl.certificate.location": str(certs / "client.crt"), "ssl.key.location": str(certs / "client.key")})
    values, error = consume(mtls, "orders", "app", 5)
    assert (len(values), error) == (5, None)
    # Without a certificate the required client authentication refuses the handshake.
    assert auth_error(client_config(b, "SSL", certs)) is not None

    # A DENY wins over the ALLOW; removing it gives the access back.
    kafka_acls(b, tmp_path, "--add", "--deny-principal", "User:alice", "--operation", "Read", "--topic", "orders")
    _, error = consume(plain(b, "alice"), "orders", "app", 5)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    kafka_acls(b, tmp_path, "--remove", "--force", "--deny-principal", "User:alice", "--operation", "Read",
               "--topic", "orders")
    values, error = consume(plain(b, "alice"), "orders", "app", 5)
    assert error is None, error
    assert b.metric("strata_broker_authorization_denied_total") > 0
    # ACLs are cluster metadata: they survive a restart.
    b.broker.stop()
    b.broker.start()
    assert produce_errors(plain(b, "bob"), "orders", 1) == [None]
    assert [e.code() for e in produce_errors(plain(b, "alice"), "orders", 1)] == [
        KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_transactional_ids_need_their_acls(acl_broker, tmp_path):
    """Transactions over a SASL listener with Kafka's authorizer: WRITE on the topic is not
    enough, the transactional id needs its own ACL (kafka-acls --transactional-id)."""
    b = acl_broker
    admin = AdminClient(plain(b, "admin"))
    admin.create_topics([NewTopic("ledger", 2, 1)])["ledger"].result()
    kafka_acls(b, tmp_path, "--add", "--allow-principal", "User:bob", "--producer", "--topic", "ledger")

    def init(transactional_id):
        producer = Producer(plain(b, "bob", **{"transactional.id": transactional_id}))
        try:
            producer.init_transactions(30)
            return producer, None
        except KafkaException as e:
            return None, e.args[0].code()

    assert init("ledger-writer") == (None, KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    kafka_acls(b, tmp_path, "--add", "--allow-principal", "User:bob", "--producer", "--topic", "ledger",
               "--transactional-id", "ledger-writer")
    producer, error = init("ledger-writer")
    assert error is None, error
    for outcome in ("commit", "abort"):
        producer.begin_transaction()
        for i in range(10):
            producer.produce("ledger", f"{outcome}-{i}".encode(), partition=i % 2)
        if outcome == "commit":
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    # Another transactional id of the same user is still refused.
    assert init("someone-else") == (None, KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)

    kafka_acls(b, tmp_path, "--add", "--allow-principal", "User:alice", "--consumer",
               "--topic", "ledger", "--group", "auditors")
    values, error = consume(plain(b, "alice", **{"isolation.level": "read_committed"}),
                            "ledger", "auditors", 10)
    assert error is None, error
    assert sorted(values) == sorted(f"commit-{i}" for i in range(10)), values


def test_clients_are_told_what_they_may_do(acl_broker, tmp_path):
    """KIP-430: librdkafka's describe calls with include_authorized_operations get the
    operations the ACLs allow this principal, per topic, group and the cluster."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AclOperation as Op

    b = acl_broker
    admin = AdminClient(plain(b, "admin"))
    admin.create_topics([NewTopic("ledger", 1, 1)])["ledger"].result()
    kafka_acls(b, tmp_path, "--add", "--allow-principal", "User:alice", "--consumer",
               "--topic", "ledger", "--group", "auditors")
    admin.create_topics([NewTopic("ledger-in", 1, 1)])["ledger-in"].result()
    assert produce_errors(plain(b, "admin"), "ledger", 1) == [None]
    # alice's consumer makes the group exist.
    values, error = consume(plain(b, "alice"), "ledger", "auditors", 1)
    assert (values, error) == (["0"], None)

    # Each user's client lives as long as the test: librdkafka fails the futures of a
    # client that is gone.
    clients = {user: AdminClient(plain(b, user)) for user in ("admin", "alice")}

    def topic_ops(user, topic):
        described = clients[user].describe_topics(
            TopicCollection([topic]), include_authorized_operations=True)[topic].result()
        return set(described.authorized_operations)

    def cluster_ops(user):
        described = clients[user].describe_cluster(include_authorized_operations=True).result()
        return set(described.authorized_operations or [])

    def group_ops(user, group):
        described = clients[user].describe_consumer_groups(
            [group], include_authorized_operations=True)[group].result()
        return set(described.authorized_operations)

    # --consumer grants READ and DESCRIBE on the topic and READ on the group (READ
    # implies DESCRIBE there too).
    assert topic_ops("alice", "ledger") == {Op.READ, Op.DESCRIBE}
    assert group_ops("alice", "auditors") == {Op.READ, Op.DESCRIBE}
    assert cluster_ops("alice") == set()
    # The super user may do everything each resource type supports (Kafka's lists).
    assert topic_ops("admin", "ledger") == {
        Op.READ, Op.WRITE, Op.CREATE, Op.DESCRIBE, Op.DELETE, Op.ALTER, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}
    assert cluster_ops("admin") == {
        Op.CREATE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS, Op.IDEMPOTENT_WRITE, Op.ALTER,
        Op.DESCRIBE}
    # A topic alice has no ACL for stays hidden from her.
    with pytest.raises(KafkaException):
        topic_ops("alice", "ledger-in")


def frame(api_key, version, body, correlation=1):
    """A Kafka request with header v1 (client id "bad-input")."""
    payload = struct.pack(">hhih", api_key, version, correlation, 9) + b"bad-input" + body
    return struct.pack(">i", len(payload)) + payload


def read_frame(sock):
    """A response's bytes after the length, or None once the broker closed the connection."""
    def exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data
    size = exact(4)
    return None if size is None else exact(struct.unpack(">i", size)[0])


def string(s):
    return struct.pack(">h", len(s)) + s


def sasl_handshake(sock, mechanism):
    sock.sendall(frame(17, 1, string(mechanism)))
    response = read_frame(sock)
    return struct.unpack(">h", response[4:6])[0]


def sasl_authenticate(sock, token):
    """(error code, auth bytes) of SaslAuthenticate v1, or None if the connection closed."""
    sock.sendall(frame(36, 1, struct.pack(">i", len(token)) + token))
    response = read_frame(sock)
    if response is None:
        return None
    error = struct.unpack(">h", response[4:6])[0]
    message_len = struct.unpack(">h", response[6:8])[0]
    at = 8 + max(message_len, 0)
    length = struct.unpack(">i", response[at:at + 4])[0]
    return error, response[at + 4:at + 4 + max(length, 0)]


def closed(sock):
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_bad_input_on_secured_listeners(secure, certs):
    host, port = secure.bootstrap("SASL_PLAINTEXT").split(":")
    connect = lambda: socket.create_connection((host, int(port)), timeout=10)
    failed_before = secure.metric("strata_broker_failed_authentication_total")

    # A garbage PLAIN token: SASL_AUTHENTICATION_FAILED, then the connection closes.
    with connect() as s:
        assert sasl_handshake(s, b"PLAIN") == 0
        assert sasl_authenticate(s, b"\xff\xfe garbage")[0] == 58
        assert closed(s)
    # A SCRAM exchange with a forged proof, and one abandoned half way.
    add_scram_user(secure, "erin", "erin-secret")
    with connect() as s:
        assert sasl_handshake(s, b"SCRAM-SHA-512") == 0
        error, server_first = sasl_authenticate(s, b"n,,n=erin,r=abcdef")
        assert error == 0 and server_first.startswith(b"r=abcdef")
        nonce = server_first.split(b",")[0][2:]
        assert sasl_authenticate(s, b"c=biws,r=" + nonce + b",p=" + b"A" * 88)[0] == 58
        assert closed(s)
    with connect() as s:
        assert sasl_handshake(s, b"SCRAM-SHA-512") == 0
        assert sasl_authenticate(s, b"n,,n=erin,r=abcdef")[0] == 0
    # A token larger than sasl.server.max.receive.size (512 KiB) is never read.
    with connect() as s:
        s.sendall(struct.pack(">i", 600_000) + b"x" * 1000)
        assert closed(s)
    # Requests other than ApiVersions and the SASL exchange before authentication.
    with connect() as s:
        s.sendall(frame(3, 1, struct.pack(">i", -1)))  # Metadata v1, all topics
        assert read_frame(s) is None
    # Brute force shows in the metrics.
    for _ in range(5):
        with connect() as s:
            sasl_handshake(s, b"PLAIN")
            assert sasl_authenticate(s, b"\0bob\0guess")[0] == 58
    assert secure.metric("strata_broker_failed_authentication_total") >= failed_before + 8

    # An expired client certificate is refused in the handshake (certificates are
    # requested on SSL). One from a CA the broker does not list is not even sent:
    # librdkafka matches it against the CAs the broker names and connects without it.
    handshakes_before = secure.metric("strata_broker_tls_handshake_failures_total")
    with_cert = lambda name: client_config(secure, "SSL", certs, **{
        "ssl.certificate.location": str(certs / f"{name}.crt"), "ssl.key.location": str(certs / f"{name}.key")})
    err = auth_error(with_cert("expired"))
    assert "certificate expired" in err.str(), err
    assert secure.metric("strata_broker_tls_handshake_failures_total") > handshakes_before
    round_trip(with_cert("intruder"), f"anonymous-{uuid.uuid4().hex[:8]}", n=2)

    # Nothing else was affected.
    good = {"sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "erin", "sasl.password": "erin-secret"}
    round_trip(client_config(secure, "SASL_SSL", certs, **good), f"after-{uuid.uuid4().hex[:8]}", n=5)


def test_kcat_over_sasl_ssl_and_mtls(secure, certs):
    """kcat (Debian's, librdkafka 2.0) produces and consumes with SCRAM-SHA-512 over TLS,
    and over SSL with a client certificate."""
    import shutil

    kcat = shutil.which("kcat")
    if kcat is None:
        subprocess.run(["bash", str(REPO / "tools" / "setup-kcat.sh")], check=True)
        kcat = shutil.which("kcat")
    add_scram_user(secure, "kate", "kate-secret")
    topic = f"kcat-{uuid.uuid4().hex[:8]}"
    scram = [
        "-X", "security.protocol=sasl_ssl", "-X", f"ssl.ca.location={certs / 'ca.pem'}",
        "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=kate", "-X", "sasl.password=kate-secret",
    ]
    out = subprocess.run([kcat, "-b", secure.bootstrap("SASL_SSL"), "-t", topic, "-P", *scram],
                         input=b"one\ntwo\nthree\n", capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    mtls = [
        "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={certs / 'ca.pem'}",
        "-X", f"ssl.certificate.location={certs / 'client.crt'}", "-X", f"ssl.key.location={certs / 'client.key'}",
    ]
    out = subprocess.run([kcat, "-b", secure.bootstrap("SSL"), "-t", topic, "-C", "-o", "beginning", "-e", *mtls],
                         capture_output=True, timeout=60)
    assert out.stdout.decode().split() == ["one", "two", "three"], out.stderr.decode()
    wrong = [a.replace("kate-secret", "nope") for a in scram]
    out = subprocess.run([kcat, "-b", secure.bootstrap("SASL_SSL"), "-L", *wrong],
                         capture_output=True, timeout=60)
    assert out.returncode != 0
    assert "Authentication failed" in out.stderr.decode(), out.stderr.decode()


def test_brokers_log_in_to_each_other_with_scram_made_by_kafkas_zookeeper_writer(tmp_path):
    """The inter-broker user is created before the brokers start, the way Kafka's docs
    say to: kafka-configs --zookeeper writes /config/users/broker itself. Strata brokers
    read that credential and log in to each other with SCRAM-SHA-512."""
    port, internal = free_port(), free_port()
    ensemble = Ensemble(tmp_path / "zk", n=1)
    cluster = None
    try:
        # The chroot first: brokers create theirs at start, ConfigCommand does not.
        from kazoo.client import KazooClient

        zk = KazooClient(hosts=ensemble.hosts(), timeout=15)
        zk.start(timeout=30)
        zk.ensure_path("/strata")
        zk.stop()
        zk.close()
        kafka_tool(
            "kafka.admin.ConfigCommand", "--zookeeper", ensemble.hosts() + "/strata", "--alter",
            "--add-config", "SCRAM-SHA-512=[password=broker-secret]",
            "--entity-type", "users", "--entity-name", "broker",
        )
        cluster = StrataCluster(tmp_path / "brokers", ensemble, port=port, extra={
            "listeners": f"PLAINTEXT://{{host}}:{port},INTERNAL://{{host}}:{internal}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
            "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            "listener.name.internal.sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.internal.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                'username="broker" password="broker-secret";',
            # Sessions of 1.5 s: the brokers' own connections re-authenticate (KIP-368).
            "listener.name.internal.connections.max.reauth.ms": "1500",
        })
        cluster.create_topic("scram-replicated", partitions=2, rf=3)
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
        errors = []
        logins = lambda: sum(  # noqa: E731
            metric(cluster.metrics_port, "strata_broker_successful_authentication_total", cluster.host(i)) or 0
            for i in cluster.running())
        before = logins()
        deadline = time.time() + 5
        i = 0
        while time.time() < deadline:
            producer.produce("scram-replicated", str(i).encode(), on_delivery=lambda e, m: e and errors.append(e))
            producer.poll(0.05)
            i += 1
        assert producer.flush(60) == 0 and not errors, errors[:3]
        # Replication went on across three session lifetimes: the fetchers logged in
        # again on their connections instead of being cut off when their sessions ended.
        assert logins() >= before + 4, (before, logins())
        for b in cluster.running():
            assert "SASL session ended" not in cluster.log(b), cluster.log(b)[-2000:]
    finally:
        if cluster:
            cluster.close()
        ensemble.close()
