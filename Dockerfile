# syntax=docker/dockerfile:1
#
# One image for every Strata role: the broker, the coordinator, the operator and the
# `strata` CLI. The operator's StatefulSets start brokers and coordinators from it with a
# small /bin/sh script (per-pod ids from the ordinal), so the runtime keeps a shell.
#
#   docker build -t strata:dev .
#   docker run --rm strata:dev strata-operator crds

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the registry and build output between builds of the same builder.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        -p strata-broker -p strata-coordinator -p strata-operator -p strata \
 && mkdir -p /out \
 && cp target/release/strata-broker target/release/strata-coordinator \
       target/release/strata-operator target/release/strata /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: the operator talks TLS to the API server.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 strata \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/strata --shell /usr/sbin/nologin strata \
 && mkdir -p /var/lib/strata /etc/strata \
 && chown strata:strata /var/lib/strata
COPY --from=builder /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/strata
# Kafka, Kafka TLS, broker metrics, ZooKeeper client/quorum/election, coordinator metrics,
# operator metrics.
EXPOSE 9092 9093 9404 2181 2888 3888 7000 8080
CMD ["strata-operator", "run"]
