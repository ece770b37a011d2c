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
from strata_broker import free_port
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
