"""The secure client port, as ZooKeeper's clients use it: kazoo over TLS with a client
certificate, that certificate's subject as an `x509` ACL id, and Apache ZooKeeper's own
zkCli with its Netty TLS client — run on strata-coordinator and, with the same zoo.cfg,
on Apache ZooKeeper."""

import subprocess

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

from certs import make_certificates
from kafka39 import XID_OUT_OF_ORDER
from kafka39 import Broker as KafkaBroker
from strata_broker import free_port
from waiting import wait_for
from zk_support import Ensemble, zookeeper_lib

# RFC 2253, as ZooKeeper's X509AuthenticationProvider names the client certificate.
ALICE = "OU=test,CN=alice"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(params=["strata", "zookeeper"])
def ensemble(request, certs, tmp_path):
    secure = free_port()
    e = Ensemble(
        tmp_path / "zk",
        n=1,
        impl=request.param,
        extra=(
            f"secureClientPort={secure}\n"
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
            "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n"
            f"ssl.keyStore.location={certs / 'server.pem'}\nssl.keyStore.type=PEM\n"
            f"ssl.trustStore.location={certs / 'ca.pem'}\nssl.trustStore.type=PEM\n"
        ),
    )
    e.secure_port = secure
    yield e
    e.close()


def tls_client(ensemble, certs, cert="client"):
    return KazooClient(
        hosts=f"127.0.0.1:{ensemble.secure_port}",
        use_ssl=True,
        ca=str(certs / "ca.pem"),
        certfile=str(certs / f"{cert}.crt") if cert else None,
        keyfile=str(certs / f"{cert}.key") if cert else None,
        verify_certs=True,
        timeout=15,
    )


def test_kazoo_over_tls_with_an_x509_acl(ensemble, certs):
    alice = tls_client(ensemble, certs)
    alice.start(timeout=30)
    try:
        alice.create("/tls-node", b"for alice only", acl=[make_acl("x509", ALICE, all=True)])
        assert alice.get("/tls-node")[0] == b"for alice only"
        assert alice.get_acls("/tls-node")[0][0].id.id == ALICE
        # The plaintext port serves the same tree, but the ACL keeps others out.
        plain = KazooClient(hosts=f"127.0.0.1:{ensemble.client_port}", timeout=15)
        plain.start(timeout=30)
        try:
            with pytest.raises(NoAuthError):
                plain.get("/tls-node")
            # As in ZooKeeper 3.6+, even its stat needs READ.
            with pytest.raises(NoAuthError):
                plain.exists("/tls-node")
            assert plain.get_children("/") is not None
        finally:
            plain.stop()
            plain.close()
    finally:
        alice.stop()
        alice.close()
    # Client certificates are needed (ssl.clientAuth defaults to need): without one
    # there is no session.
    anonymous = tls_client(ensemble, certs, cert=None)
    with pytest.raises(Exception):
        anonymous.start(timeout=5)
    anonymous.close()


def test_zkcli_over_tls(ensemble, certs):
    alice = tls_client(ensemble, certs)
    alice.start(timeout=30)
    alice.ensure_path("/cli")
    alice.set("/cli", b"hello over tls")
    alice.stop()
    alice.close()
    out = subprocess.run(
        [
            "java",
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
            "-Dzookeeper.client.secure=true",
            f"-Dzookeeper.ssl.keyStore.location={certs / 'client.pem'}",
            "-Dzookeeper.ssl.keyStore.type=PEM",
            f"-Dzookeeper.ssl.trustStore.location={certs / 'ca.pem'}",
            "-Dzookeeper.ssl.trustStore.type=PEM",
            "-cp",
            zookeeper_lib() + "/*",
            "org.apache.zookeeper.ZooKeeperMain",
            "-server",
            f"127.0.0.1:{ensemble.secure_port}",
            "get",
            "/cli",
        ],
        capture_output=True,
        timeout=120,
    )
    said = out.stdout.decode() + out.stderr.decode()
    assert "hello over tls" in said, said


def test_kafka_39_keeps_its_metadata_over_tls(ensemble, certs, tmp_path):
    """Apache Kafka 3.9 in ZooKeeper mode with `zookeeper.ssl.client.enable`: its
    ZooKeeper client is the Netty one, which sends requests right behind its
    ConnectRequest."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    port = free_port()
    kafka = KafkaBroker(
        tmp_path / "kafka", 1, port, f"127.0.0.1:{ensemble.secure_port}/kafka",
        extra=(
            "zookeeper.ssl.client.enable=true\n"
            "zookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty\n"
            f"zookeeper.ssl.keystore.location={certs / 'client.pem'}\nzookeeper.ssl.keystore.type=PEM\n"
            f"zookeeper.ssl.truststore.location={certs / 'ca.pem'}\nzookeeper.ssl.truststore.type=PEM\n"
            # Kafka 3.9 offers TLSv1.2 to ZooKeeper unless told; ZooKeeper (and the
            # coordinator) take TLSv1.3 unless told.
            "zookeeper.ssl.protocol=TLSv1.3\n"
            "default.replication.factor=1\nmin.insync.replicas=1\noffsets.topic.replication.factor=1\n"
            "transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n"
        ),
    )
    kafka.start()
    try:
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap})

        def created():
            try:
                admin.create_topics([NewTopic("over-tls", 1, 1)])["over-tls"].result(timeout=10)
                return True
            except Exception as e:
                return "already exists" in str(e)

        wait_for(created, timeout=120, what=lambda: f"a topic created through Kafka:\n{kafka.log()[-3000:]}")
        producer = Producer({"bootstrap.servers": kafka.bootstrap})
        for i in range(10):
            producer.produce("over-tls", str(i).encode())
        assert producer.flush(60) == 0
        consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "g",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe(["over-tls"])
        seen = []
        wait_for(lambda: (m := consumer.poll(0.5)) is not None and not m.error() and seen.append(m.value())
                 or len(seen) == 10, timeout=60, what="ten records back")
        consumer.close()
        log = kafka.log()
        assert not XID_OUT_OF_ORDER.search(log)
        assert "SSL" in log or "ssl" in log
    finally:
        kafka.stop()
