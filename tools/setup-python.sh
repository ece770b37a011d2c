#!/usr/bin/env bash
# Creates (or refreshes) the virtualenv the Python client tests use, under the cache
# directory outside the clone. Re-running is cheap: it reinstalls only when
# tests/python/requirements.txt changed.
set -euo pipefail
cache="${STRATA_CACHE:-$HOME/.cache/strata}"
venv="$cache/venv"
req="$(cd "$(dirname "$0")/.." && pwd)/tests/python/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
mkdir -p "$cache"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "python test environment ready in $venv"
