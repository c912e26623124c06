#!/usr/bin/env bash
# Makes what compose.yaml mounts, under deploy/compose/secrets/ (owner-only): the NATS users
# generated from the registry (`onedoor nats-config`), a clients' CA with the NATS and onedoor
# server certificates, a separate routes' CA with one route certificate per NATS node, and
# .env naming the user the onedoor containers run as. Keeps what exists; delete secrets/ to
# start over. A staging or production site uses its own PKI instead (docs/operations.md).
#
#   bash deploy/compose/prepare.sh [REGISTRY.toml]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
secrets="$here/secrets"
onedoor="${ONEDOOR:-$root/target/release/onedoor}"
[[ -x "$onedoor" ]] || (cd "$root" && cargo build --release --locked -p onedoor)
umask 077
# ca/ holds the CA keys and is mounted nowhere; nats-tls/ only into the NATS containers;
# tls/ (the CA certificate, the onedoor servers' certificate) into the onedoor containers.
mkdir -p "$secrets/ca" "$secrets/nats-tls" "$secrets/tls"

registry=()
[[ $# -ge 1 ]] && registry=(--registry "$1")
"$onedoor" nats-config --out "$secrets/nats" "${registry[@]}"

# ca NAME: a self-signed CA (key in ca/, certificate in ca/ too), kept if present.
ca() {
    [[ -f "$secrets/ca/$1.pem" ]] && return
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
        -subj "/CN=onedoor compose $1" -keyout "$secrets/ca/$1-key.pem" \
        -out "$secrets/ca/$1.pem" 2>/dev/null
}

# cert CA DIR NAME SANS: DIR/NAME.pem and DIR/NAME-key.pem signed by CA, for server and
# client use.
cert() {
    local ca="$secrets/ca/$1" dir="$secrets/$2" name="$3" sans="$4"
    [[ -f "$dir/$name.pem" ]] && return
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=$name" -keyout "$dir/$name-key.pem" -out "$dir/$name.csr" 2>/dev/null
    openssl x509 -req -in "$dir/$name.csr" -CA "$ca.pem" -CAkey "$ca-key.pem" \
        -CAcreateserial -days 825 -out "$dir/$name.pem" -extfile <(printf '%s\n' \
        "subjectAltName=$sans" "extendedKeyUsage=serverAuth,clientAuth") 2>/dev/null
    rm -f "$dir/$name.csr"
}

ca clients-ca
cp "$secrets/ca/clients-ca.pem" "$secrets/tls/ca.pem"
cert clients-ca nats-tls nats-server "DNS:nats-a,DNS:nats-b,DNS:nats-c,DNS:localhost,IP:127.0.0.1"
cert clients-ca tls onedoor-server \
    "DNS:adapter-moic,DNS:adapter-mof,DNS:adapter-mops,DNS:adapter-front,DNS:tracker,DNS:localhost,IP:127.0.0.1"
# Routes get a CA of their own: a certificate from it joins the cluster.
ca route-ca
cp "$secrets/ca/route-ca.pem" "$secrets/nats-tls/route-ca.pem"
for node in a b c; do
    cert route-ca nats-tls "route-$node" "DNS:nats-$node"
done

# The onedoor containers run as this user, so they can read the owner-only seeds. As root,
# hand the files to the image's own user instead.
if [[ "$(id -u)" == 0 ]]; then
    chown -R 10001:10001 "$secrets"
    printf 'ONEDOOR_UID=10001\nONEDOOR_GID=10001\n' >"$here/.env"
else
    printf 'ONEDOOR_UID=%s\nONEDOOR_GID=%s\n' "$(id -u)" "$(id -g)" >"$here/.env"
fi
echo "prepare: secrets in $secrets; now: docker compose -f $here/compose.yaml up --build"
