#!/usr/bin/env bash
# Install what the widget's browser tests need, only what is missing (idempotent):
#   - Debian's Chromium (driven by the pinned `playwright` PyPI package through
#     executable_path, so no `playwright install` and no browser download),
#   - a CJK font, so that screenshots of the Chinese widget show text, not boxes,
#   - npm, and axe-core (pinned in package-lock.json) in tests/browser/node_modules.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
updated=""
apt_install() {
    if [ -z "$updated" ]; then $SUDO apt-get update -q; updated=1; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@"
}

if ! command -v chromium >/dev/null 2>&1; then
    echo "[browser-setup] installing chromium"
    apt_install chromium
fi
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    echo "[browser-setup] installing a Chinese font"
    apt_install fonts-wqy-zenhei
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "[browser-setup] installing npm"
    apt_install nodejs npm
fi
if [ ! -f node_modules/axe-core/axe.min.js ]; then
    echo "[browser-setup] installing axe-core into tests/browser/node_modules"
    npm ci --no-audit --no-fund --loglevel=error
fi
