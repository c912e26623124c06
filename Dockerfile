# syntax=docker/dockerfile:1
# onedoor: one small image holding only the `onedoor` binary; the command picks the role
# (`adapter`, `tracker`, `provision`, `health`, …). nats-server runs from its own image.
#
#   docker build -t onedoor .
#   docker run --rm onedoor --help
#
# Build stage: the workspace needs Rust 1.94 or newer (sqlx 0.9). No protoc or OpenSSL is
# needed: protobuf is compiled by protox and TLS is rustls.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The caches keep crates and incremental artefacts between builds; the binary is copied out
# of the cached target directory, which does not survive into the next stage.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p onedoor \
    && install -D -m 0755 target/release/onedoor /out/onedoor

# Runtime: Debian slim (glibc, as the build), CA roots for endpoints with public
# certificates, and `sh` for the Kubernetes init step that copies secrets owner-only.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/onedoor \
       --shell /usr/sbin/nologin onedoor \
    && install -d -o onedoor -g onedoor -m 0700 /var/lib/onedoor
COPY --from=build /out/onedoor /usr/local/bin/onedoor
USER 10001:10001
WORKDIR /var/lib/onedoor
ENV ONEDOOR_DATA_DIR=/var/lib/onedoor
# adapter gRPC, tracker gRPC, staff web page, metrics (adapter, tracker)
EXPOSE 50051 50070 8443 9464 9465
# An adapter's health (grpc.health.v1 over TLS): NOT_SERVING while its NATS does not answer.
# Set ONEDOOR_HEALTH_CA_CERT to the CA of the adapter's certificate; other roles override
# the check (deploy/compose/compose.yaml) or ignore it (Kubernetes uses its own probes).
HEALTHCHECK --interval=15s --timeout=6s --start-period=30s --retries=3 \
    CMD ["onedoor", "health", "--address", "https://127.0.0.1:50051", "--timeout", "5"]
ENTRYPOINT ["onedoor"]
CMD ["--help"]
