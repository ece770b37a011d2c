#!/usr/bin/env bash
# Makes sure the Rust toolchain has rustfmt and clippy (CI runs both).
set -euo pipefail
if ! command -v cargo >/dev/null; then
  echo "cargo is required: install Rust from rustup" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep "^$component" >/dev/null; then
    rustup component add "$component"
  fi
done
