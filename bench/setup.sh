#!/usr/bin/env bash
# Install what `make bench` needs, only when it is missing (idempotent): Debian's wrk,
# the HTTP load generator bench/run.py drives. Uses apt-get, so it needs root or sudo.
set -euo pipefail

if [ -x /usr/bin/wrk ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "[bench-setup] installing wrk"
# Refresh the package lists only when apt does not know wrk yet.
if ! apt-cache show wrk >/dev/null 2>&1; then
    $SUDO apt-get update -q
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends wrk
