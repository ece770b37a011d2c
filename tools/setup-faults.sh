#!/usr/bin/env bash
# iptables from Debian's packages: the cluster fault test cuts a broker's address off the
# network with it.
set -euo pipefail
command -v iptables >/dev/null && exit 0
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables >/dev/null
fi
