#!/usr/bin/env python3
"""A recording proxy: seeds fuzz corpora from real clients' traffic.

    capture.py LISTEN_PORT UPSTREAM_PORT OUT_DIR [--per-kind N] [--kafka]

Forwards 127.0.0.1:LISTEN_PORT to 127.0.0.1:UPSTREAM_PORT and writes every
length-prefixed frame a client sends (without its length prefix) to OUT_DIR, named by
its content's hash, so the same request twice is one seed. At most N frames are kept per
kind of request: the API key and version for Kafka (--kafka), the op code for ZooKeeper
(the first frame of a connection, its ConnectRequest, is a kind of its own). Runs until
killed; the clients connect to LISTEN_PORT.
"""

import argparse
import hashlib
import os
import socket
import struct
import threading


def kind_of(frame, first, kafka):
    if kafka:
        if len(frame) < 4:
            return "short"
        key, version = struct.unpack(">hh", frame[:4])
        return f"api{key}v{version}"
    if first:
        return "connect"
    if len(frame) < 8:
        return "short"
    return f"op{struct.unpack('>i', frame[4:8])[0]}"


class Recorder:
    def __init__(self, out, per_kind, kafka):
        self.out, self.per_kind, self.kafka = out, per_kind, kafka
        self.counts, self.lock = {}, threading.Lock()
        os.makedirs(out, exist_ok=True)

    def record(self, frame, first):
        kind = kind_of(frame, first, self.kafka)
        name = os.path.join(self.out, hashlib.sha1(frame).hexdigest()[:16])
        with self.lock:
            if self.counts.get(kind, 0) >= self.per_kind or os.path.exists(name):
                return
            self.counts[kind] = self.counts.get(kind, 0) + 1
        with open(name, "wb") as f:
            f.write(frame)


def close_both(*sockets):
    for s in sockets:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def client_to_server(src, dst, recorder):
    buf, first = b"", True
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            buf += data
            while len(buf) >= 4:
                (n,) = struct.unpack(">i", buf[:4])
                if n < 0 or n > 16 << 20:  # not a frame (a ZooKeeper four-letter word)
                    buf = b""
                    break
                if len(buf) < 4 + n:
                    break
                recorder.record(buf[4 : 4 + n], first)
                buf, first = buf[4 + n :], False
    except OSError:
        pass
    finally:
        close_both(src, dst)


def server_to_client(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        close_both(src, dst)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("listen", type=int)
    p.add_argument("upstream", type=int)
    p.add_argument("out")
    p.add_argument("--per-kind", type=int, default=8)
    p.add_argument("--kafka", action="store_true")
    a = p.parse_args()
    recorder = Recorder(a.out, a.per_kind, a.kafka)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", a.listen))
    server.listen(128)
    while True:
        client, _ = server.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", a.upstream))
        except OSError:  # the server is down (restarting): the client sees a refusal
            client.close()
            continue
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=client_to_server, args=(client, upstream, recorder), daemon=True).start()
        threading.Thread(target=server_to_client, args=(upstream, client), daemon=True).start()


if __name__ == "__main__":
    main()
