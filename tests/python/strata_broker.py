"""Starts real strata-broker processes for the Python client tests."""

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BIN_DIR = Path(os.environ.get("STRATA_BIN_DIR", Path.home() / ".cache/strata/target/debug"))


_handed_out = set()


def peak_rss_mib(pid):
    """A process's peak resident set (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        line = next(l for l in f if l.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024


def metric(port, name, host="127.0.0.1"):
    """The value of one sample on a /metrics endpoint at `host`:`port`, or None."""
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        body = b""
        while chunk := s.recv(65536):
            body += chunk
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def free_port():
    """A port below Linux's ephemeral range (32768+), so no client socket can hold it."""
    import random
    while True:
        port = random.randrange(20000, 32000)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


class Broker:
    """One broker process with its own data directory and port."""

    def __init__(self, extra=None, port=None):
        """`port` is the PLAINTEXT listener's (waited for at start); `extra` may name
        more listeners in `listeners`."""
        self.dir = Path(tempfile.mkdtemp(prefix="strata-py-"))
        self.port = port or free_port()
        self.extra = dict(extra or {})
        self.proc = None
        self.start()

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def _write_config(self):
        props = {
            "broker.id": "0",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "log.dirs": str(self.dir / "logs"),
            "metrics.port": "0",
            "group.initial.rebalance.delay.ms": "0",
        }
        props.update(self.extra)
        path = self.dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def start(self):
        binary = BIN_DIR / "strata-broker"
        if not binary.exists():
            raise RuntimeError(f"{binary} not found; run `cargo build --workspace --bins` first")
        log = open(self.dir / "broker.log", "ab")
        self.proc = subprocess.Popen([str(binary), "--config", str(self._write_config())], stdout=log, stderr=log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited during start-up:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"broker did not start:\n{self.log()}")

    def log(self):
        try:
            return (self.dir / "broker.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """Clean shutdown (SIGTERM)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None

    def kill(self):
        """A crash (SIGKILL)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def restart(self):
        self.start()

    def close(self):
        self.kill()
