"""Certificates for the TLS tests, made with `openssl`: a CA, a server certificate for
127.0.0.1..3 and localhost (usable as a client certificate too, for brokers talking to
each other), a client certificate for `CN=alice,OU=test`, a second CA with a renewed
server certificate and an intruder client certificate, and an expired client
certificate from the first CA."""

import subprocess
from pathlib import Path


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign,cRLSign",
        cwd=d,
    )


def make_cert(d, ca, name, subject, usage):
    """A key and a certificate signed by `ca`; `name`.pem holds both (Kafka's PEM key store)."""
    ext = Path(d) / f"{name}.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        f"keyUsage=digitalSignature\nextendedKeyUsage={usage}\n"
    )
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d,
    )
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", ext.name, cwd=d,
    )
    key = (Path(d) / f"{name}.key").read_text()
    crt = (Path(d) / f"{name}.crt").read_text()
    (Path(d) / f"{name}.pem").write_text(key + crt)


def make_expired_cert(d, ca, name, subject):
    """A client certificate from `ca` that expired in 2020 (`openssl ca` sets the dates)."""
    (Path(d) / "index.txt").write_text("")
    (Path(d) / "serial").write_text("1000\n")
    (Path(d) / "ca.cnf").write_text(
        "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
        "default_md = sha256\npolicy = any\n[any]\ncommonName = supplied\norganizationalUnitName = optional\n"
        "[ext]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n"
    )
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-cert", f"{ca}.pem", "-keyfile", f"{ca}.key",
            "-in", f"{name}.csr", "-out", f"{name}.crt", "-startdate", "20200101000000Z",
            "-enddate", "20200102000000Z", "-extensions", "ext", "-notext", cwd=d)


def make_certificates(d):
    """Makes every certificate in directory `d` and returns it."""
    make_ca(d, "ca")
    # Brokers present their certificate to each other too (inter-broker TLS).
    make_cert(d, "ca", "server", "/CN=localhost", "serverAuth,clientAuth")
    make_cert(d, "ca", "client", "/CN=alice/OU=test", "clientAuth")
    make_ca(d, "other-ca")
    make_cert(d, "other-ca", "renewed", "/CN=localhost", "serverAuth")
    make_cert(d, "other-ca", "intruder", "/CN=alice/OU=test", "clientAuth")
    make_expired_cert(d, "ca", "expired", "/CN=alice/OU=test")
    return d
