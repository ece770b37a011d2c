#!/usr/bin/env bash
# Builds the one Strata image (strata-broker, strata-coordinator, strata-operator and the
# strata CLI) without a registry or a container engine, as an image archive that
# `ctr images import`, `docker load` and `podman load` accept:
#
#   tools/image/build.sh                  # release build -> $STRATA_CACHE/image/strata-dev.oci.tar
#   PROFILE=debug TAG=e2e tools/image/build.sh
#   CONTAINERD_ADDRESS=/path/containerd.sock tools/image/build.sh   # and import it
#
# With the end-to-end cluster up (bash e2e/kube/cluster.sh up) the image is imported into
# its containerd without being asked.
#
# Two layers, the same runtime the Dockerfile's second stage describes:
# 1. a Debian bookworm base made with mmdebstrap from Debian's mirror (minbase with
#    ca-certificates, documentation stripped as in bookworm-slim), the unprivileged user
#    strata (10001:10001) and /var/lib/strata owned by it. Cached by its recipe.
# 2. the four binaries, stripped, in /usr/local/bin.
# The binaries need only glibc, libm and libgcc_s (e2e/image/verify.sh checks that), and
# the host is bookworm too, so what cargo built here runs there.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STRATA_CACHE="${STRATA_CACHE:-/root/.cache/strata}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$STRATA_CACHE/target}"
PROFILE="${PROFILE:-release}"
TAG="${TAG:-dev}"
NAME="${IMAGE_NAME:-docker.io/library/strata}:$TAG"
OUT="$STRATA_CACHE/image"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org}"
BINARIES=(strata-broker strata-coordinator strata-operator strata)
RUN_AS=10001

mkdir -p "$OUT"
started=$SECONDS

echo "== cargo build ($PROFILE)"
case "$PROFILE" in
  # What the Dockerfile's builder stage runs.
  release) (cd "$REPO" && cargo build --locked --release \
    -p strata-broker -p strata-coordinator -p strata-operator -p strata) ;;
  # What `make test` builds before its end-to-end tests: the same targets resolve the
  # same features, so the debug binaries it made are used as they are.
  debug) (cd "$REPO" && cargo build --locked --workspace --bins --examples) ;;
  *) echo "PROFILE must be release or debug" >&2; exit 2 ;;
esac

# --- the base layer ---------------------------------------------------------------------
base_recipe=(
  --variant=minbase --include=ca-certificates
  # Merged /usr the way Debian's own images are made, without the usrmerge package (and
  # the perl it would pull in).
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --aptopt='Acquire::Languages "none"'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --customize-hook="chroot \"\$1\" groupadd --gid $RUN_AS strata"
  --customize-hook="chroot \"\$1\" useradd --uid $RUN_AS --gid $RUN_AS --no-create-home --home-dir /var/lib/strata --shell /usr/sbin/nologin strata"
  --customize-hook="mkdir -p \"\$1/var/lib/strata\" \"\$1/etc/strata\" && chown $RUN_AS:$RUN_AS \"\$1/var/lib/strata\""
  --customize-hook='rm -rf "$1"/var/log/apt/* "$1"/var/cache/debconf/*-old "$1"/etc/machine-id'
  bookworm
)
sources=(
  "deb $MIRROR/debian bookworm main"
  "deb $MIRROR/debian bookworm-updates main"
  "deb $MIRROR/debian-security bookworm-security main"
)
recipe_id="$(printf '%s\n' "${base_recipe[@]}" "${sources[@]}" | sha256sum | cut -c1-12)"
base="$OUT/base-bookworm-$recipe_id.tar"
if [[ ! -f "$base" || -n "${REFRESH_BASE:-}" ]]; then
  echo "== base layer: mmdebstrap bookworm from $MIRROR"
  command -v mmdebstrap >/dev/null || { echo "mmdebstrap missing: apt-get install -y mmdebstrap" >&2; exit 1; }
  rootfs="$(mktemp -d "$OUT/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  rmdir "$rootfs"
  if ! mmdebstrap --format=directory "${base_recipe[@]}" "$rootfs" "${sources[@]}" >"$OUT/mmdebstrap.log" 2>&1; then
    tail -30 "$OUT/mmdebstrap.log" >&2
    exit 1
  fi
  # Device nodes come from the container runtime, not the image.
  rm -rf "${rootfs:?}"/dev/*
  tar -C "$rootfs" --numeric-owner --sort=name --mtime=@0 --xattrs -cf "$base.tmp" .
  mv "$base.tmp" "$base"
  rm -f "$OUT"/base-bookworm-*.tar.gz "$OUT"/base-bookworm-*.tar.diffid
  find "$OUT" -maxdepth 1 -name 'base-bookworm-*.tar' ! -name "$(basename "$base")" -delete
  rm -rf "$rootfs"
fi

# --- the binaries -------------------------------------------------------------------------
stage="$OUT/bin-$TAG"
rm -rf "$stage"
mkdir -p "$stage/usr/local/bin"
for b in "${BINARIES[@]}"; do
  strip -o "$stage/usr/local/bin/$b" "$CARGO_TARGET_DIR/$PROFILE/$b"
done
tar -C "$stage" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -cf "$OUT/bin-$TAG.tar" usr
rm -rf "$stage"

echo "== image archive"
archive="$OUT/strata-$TAG.oci.tar"
python3 "$HERE/oci-archive.py" --out "$archive" --name "$NAME" \
  --layer "$base" --layer "$OUT/bin-$TAG.tar" \
  --user "$RUN_AS:$RUN_AS" --workdir /var/lib/strata --cmd strata-operator --cmd run \
  --expose 9092 --expose 9093 --expose 9404 --expose 2181 --expose 2888 --expose 3888 \
  --expose 7000 --expose 8080 \
  --label "org.opencontainers.image.title=strata" \
  --label "org.opencontainers.image.revision=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
echo "   $archive: $(du -m "$archive" | cut -f1) MB on disk"

# Into the end-to-end cluster's containerd when one is up (e2e/kube/cluster.sh up).
e2e_containerd="$STRATA_CACHE/e2e/node/run/containerd/containerd.sock"
if [[ -z "${CONTAINERD_ADDRESS:-}" && -S "$e2e_containerd" ]]; then
  CONTAINERD_ADDRESS="$e2e_containerd"
fi
if [[ -n "${CONTAINERD_ADDRESS:-}" ]]; then
  ctr --address "$CONTAINERD_ADDRESS" --namespace k8s.io images import "$archive" >/dev/null
  echo "   imported into containerd at $CONTAINERD_ADDRESS as $NAME"
fi
echo "image built in $((SECONDS - started)) s"
