#!/usr/bin/env python3
"""Writes a container image as one tar file from layer tarballs, without a container engine.

The tar holds an OCI image layout (oci-layout, index.json, blobs/sha256/...) and, beside it,
the manifest.json that `docker load` reads, so the same file goes to
`ctr images import`, `docker load`, `podman load` and `skopeo copy oci-archive:`.

    oci-archive.py --out strata.oci.tar --name docker.io/library/strata:dev \
        --layer base.tar --layer bin.tar --user 10001:10001 --workdir /var/lib/strata \
        --cmd strata-operator --cmd run --expose 9092

Layers are given uncompressed and stored gzip-compressed (what a registry would hold). The
compressed copy of a layer is kept beside it as LAYER.tar.gz and reused while it is newer
than the layer, so an unchanged base costs nothing on the next build.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# Fixed timestamps keep the image digest a function of its contents.
EPOCH = "1970-01-01T00:00:00Z"


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def compressed(layer):
    """(path of the gzip copy, diff id of the uncompressed layer)."""
    gz, diff_id_file = layer + ".gz", layer + ".diffid"
    fresh = (
        os.path.exists(gz)
        and os.path.exists(diff_id_file)
        and os.path.getmtime(gz) >= os.path.getmtime(layer)
    )
    if not fresh:
        diff_id = sha256_file(layer)
        tmp = gz + ".tmp"
        with open(layer, "rb") as src, open(tmp, "wb") as raw:
            # mtime=0 and no file name: the same layer always compresses to the same bytes.
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, gz)
        with open(diff_id_file, "w") as f:
            f.write(diff_id)
    with open(diff_id_file) as f:
        return gz, f.read().strip()


def add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True, help="full reference, e.g. docker.io/library/strata:dev")
    p.add_argument("--layer", action="append", required=True, help="uncompressed layer tar, base first")
    p.add_argument("--entrypoint", action="append", default=[])
    p.add_argument("--cmd", action="append", default=[])
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--user", default="")
    p.add_argument("--workdir", default="")
    p.add_argument("--expose", action="append", default=[], help="port[/proto]")
    p.add_argument("--label", action="append", default=[], help="key=value")
    a = p.parse_args()

    layers = [compressed(layer) for layer in a.layer]
    blobs = [(gz, sha256_file(gz), os.path.getsize(gz)) for gz, _ in layers]

    config = {"Env": a.env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    if a.entrypoint:
        config["Entrypoint"] = a.entrypoint
    if a.cmd:
        config["Cmd"] = a.cmd
    if a.user:
        config["User"] = a.user
    if a.workdir:
        config["WorkingDir"] = a.workdir
    if a.expose:
        config["ExposedPorts"] = {(e if "/" in e else e + "/tcp"): {} for e in a.expose}
    if a.label:
        config["Labels"] = dict(label.split("=", 1) for label in a.label)
    image_config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": EPOCH,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for _, d in layers]},
            "history": [{"created": EPOCH, "created_by": os.path.basename(path)} for path in a.layer],
        },
        sort_keys=True,
    ).encode()
    config_digest = hashlib.sha256(image_config).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": "sha256:" + config_digest, "size": len(image_config)},
            "layers": [
                {"mediaType": OCI_LAYER_GZIP, "digest": "sha256:" + digest, "size": size}
                for _, digest, size in blobs
            ],
        },
        sort_keys=True,
    ).encode()
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    tag = a.name.rsplit(":", 1)[1] if ":" in a.name.rsplit("/", 1)[-1] else "latest"
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": "sha256:" + manifest_digest,
                    "size": len(manifest),
                    "annotations": {
                        "io.containerd.image.name": a.name,
                        "org.opencontainers.image.ref.name": tag,
                    },
                }
            ],
        }
    ).encode()
    docker_manifest = json.dumps(
        [
            {
                "Config": "blobs/sha256/" + config_digest,
                "RepoTags": [a.name],
                "Layers": ["blobs/sha256/" + digest for _, digest, _ in blobs],
            }
        ]
    ).encode()

    tmp = a.out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(tar, "index.json", index)
        add_bytes(tar, "manifest.json", docker_manifest)
        add_bytes(tar, "blobs/sha256/" + config_digest, image_config)
        add_bytes(tar, "blobs/sha256/" + manifest_digest, manifest)
        for gz, digest, _ in blobs:
            tar.add(gz, arcname="blobs/sha256/" + digest, recursive=False)
    os.replace(tmp, a.out)
    compressed_size = sum(size for _, _, size in blobs)
    uncompressed_size = sum(os.path.getsize(layer) for layer in a.layer)
    print(
        f"{a.name} sha256:{manifest_digest} "
        f"({compressed_size / 1e6:.1f} MB compressed, {uncompressed_size / 1e6:.1f} MB uncompressed)"
    )


if __name__ == "__main__":
    sys.exit(main())
