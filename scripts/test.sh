#!/usr/bin/env bash
# Runs onedoor's whole test suite on this machine: installs what the tests need (idempotent),
# then every crate's unit and integration tests against real nats-server processes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export ONEDOOR_NATS_SERVER="${ONEDOOR_NATS_SERVER:-$root/.tools/venv/bin/nats-server}"
exec cargo test --workspace --all-targets "$@"
