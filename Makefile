# Strata — build, run, test and benchmark.
#
#   make run     build and start a single-node broker on 127.0.0.1:9092 (data in ./data)
#   make cluster three coordinators and three brokers on 127.0.0.1..3 (data in ./data/cluster)
#   make test    install what the tests need (cached in ~/.cache/strata) and run them all
#   make e2e     the operator on a single-node Kubernetes that runs pods (part of make test)
#   make image   the one image (all binaries), built without a registry or container engine
#   make bench   Strata side by side with Apache Kafka / ZooKeeper on this machine
#   make fuzz    coverage-guided fuzzing of every decoder, FUZZ_SECONDS (60) per target
#
# Heavy downloads and builds live outside the clone so repeated runs stay fast.

SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/strata
export STRATA_CACHE := $(CACHE)
export CARGO_TARGET_DIR ?= $(CACHE)/target
VENV := $(CACHE)/venv
DEBUG_BIN := $(CARGO_TARGET_DIR)/debug
RELEASE_BIN := $(CARGO_TARGET_DIR)/release
export STRATA_BIN_DIR := $(DEBUG_BIN)
export STRATA_COORDINATOR_BIN := $(DEBUG_BIN)/strata-coordinator

.PHONY: run cluster build release test setup lint test-rust test-python test-clients test-zk-java test-kube e2e bench fuzz clean

run: release
	@mkdir -p data
	@echo "Starting strata-broker on 127.0.0.1:9092 (data in ./data, metrics on 127.0.0.1:9404/metrics); Ctrl-C stops it."
	exec $(RELEASE_BIN)/strata-broker --config config/server.properties

# Replication on a laptop: config/cluster/ (zoo.cfg and server.properties per node).
cluster: release
	bash tools/cluster.sh $(RELEASE_BIN)

build:
	cargo build --workspace --bins

release:
	cargo build --release -p strata-broker -p strata-coordinator -p strata

# A release build on a Debian bookworm base (tools/image/build.sh), written as an image
# archive for `ctr images import` / `docker load`; imported into the e2e cluster when it is up.
image:
	bash tools/image/build.sh

setup:
	bash tools/setup-rust.sh
	bash tools/setup-python.sh
	bash tools/setup-kafka.sh
	bash tools/setup-kafka.sh 3.9.1
	bash tools/setup-kafka-streams.sh
	bash tools/setup-zookeeper.sh >/dev/null
	bash tools/setup-zookeeper.sh curator >/dev/null
	bash tools/setup-kcat.sh
	bash tools/setup-faults.sh
	bash e2e/kube/setup.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test-rust:
	cargo build --workspace --bins --examples
	cargo test --workspace --no-fail-fast

test-python:
	$(VENV)/bin/python -m pytest -q tests/python

# Apache Kafka 3.9 (ZooKeeper mode), ZooKeeper's Java client and Curator's recipes on
# strata-coordinator, each beside the same run on Apache ZooKeeper; part of test-python,
# this runs them alone.
test-zk-java:
	$(VENV)/bin/python -m pytest -q tests/python/test_kafka39_zookeeper_mode.py tests/python/test_curator_recipes.py

# Client/CLI tests, Kafka's own Java tools and kcat, each against a fresh strata-broker;
# Apache ZooKeeper's zkCli against strata-coordinator.
test-clients:
	bash tests/with-broker.sh cargo test -p strata-client -p strata
	bash tests/with-broker.sh bash tests/java/kafka-tools.sh {bootstrap}
	bash tests/with-broker.sh bash tests/java/kafka-groups.sh {bootstrap}
	bash tests/with-broker.sh bash tests/kcat/kcat.sh {bootstrap} {metrics}
	bash tests/java/zkcli.sh

# The operator against a real kube-apiserver + etcd (see e2e/README.md; also how to use kind).
test-kube e2e:
	bash e2e/kube/run.sh

test: setup lint test-rust test-python test-clients test-kube

bench: release
	bash bench/run.sh

# Corpora and past crashes are replayed by `make test` (fuzz/tests/corpus.rs); this explores.
fuzz:
	bash fuzz/run.sh

clean:
	cargo clean
