#!/usr/bin/env bash
# kcat from Debian's packages, for the kcat tests (an older librdkafka than the rdkafka crate's).
set -euo pipefail
command -v kcat >/dev/null && exit 0
if ! apt-get install -y -q kcat >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q kcat >/dev/null
fi
command -v curl >/dev/null || apt-get install -y -q curl >/dev/null
