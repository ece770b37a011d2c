#!/usr/bin/env bash
# What can be checked of the Dockerfile without a container engine:
# - the release build of the four binaries the image carries, with the builder stage's
#   exact command;
# - that they need nothing from the runtime image beyond glibc (debian:bookworm-slim has
#   libc, libm, libgcc_s), so the slim runtime stage runs them;
# - the runtime layout: binaries staged as /usr/local/bin/* under a scratch root and run
#   from there, the start scripts' /bin/sh use, and the Dockerfile naming every binary.
# Building and running the image itself needs a container engine and registry access for
# the base images; neither exists on the build machines.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STRATA_CACHE="${STRATA_CACHE:-/root/.cache/strata}"
TARGET="${IMAGE_TARGET_DIR:-$STRATA_CACHE/target-image}"
ROOT="$STRATA_CACHE/image-rootfs"
BINARIES=(strata-broker strata-coordinator strata-operator strata)

echo "== release build (as the builder stage runs it)"
(cd "$REPO" && CARGO_TARGET_DIR="$TARGET" cargo build --release --locked \
  -p strata-broker -p strata-coordinator -p strata-operator -p strata)

echo "== runtime layout"
rm -rf "$ROOT"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/var/lib/strata" "$ROOT/etc/strata"
for bin in "${BINARIES[@]}"; do
  cp "$TARGET/release/$bin" "$ROOT/usr/local/bin/"
  grep -q "target/release/$bin" "$REPO/Dockerfile" || { echo "Dockerfile does not copy $bin" >&2; exit 1; }
done

echo "== shared libraries needed beyond glibc"
status=0
for bin in "${BINARIES[@]}"; do
  extra="$(ldd "$ROOT/usr/local/bin/$bin" | awk '{print $1}' \
    | grep -Ev '^(linux-vdso\.so\.1|/lib64/ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1)$' || true)"
  if [[ -n "$extra" ]]; then
    echo "$bin needs libraries the slim runtime lacks: $extra" >&2
    status=1
  else
    echo "   $bin: glibc only ($(du -h "$ROOT/usr/local/bin/$bin" | cut -f1))"
  fi
done

echo "== binaries run from the staged root"
PATH="$ROOT/usr/local/bin:/usr/bin:/bin" strata-operator crds | grep -q "kind: CustomResourceDefinition"
echo "   strata-operator crds: ok"
exit "$status"
