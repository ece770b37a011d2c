#!/usr/bin/env bash
# Fetch Apache ZooKeeper (server, zkCli and their dependencies) from Maven Central into
# /root/.cache/strata/zookeeper/<version>/lib and print that directory. Idempotent: a
# warm cache returns at once. Used by tests/java/zkcli.sh (zkCli against
# strata-coordinator), bench/zk/run.sh and the Python tests (Apache ZooKeeper as the
# baseline).
#
# `setup-zookeeper.sh curator` fetches Apache Curator's recipes (and the ZooKeeper client
# they run on) into /root/.cache/strata/curator/<version>/lib instead, and prints that.
set -euo pipefail

VERSION="${ZOOKEEPER_VERSION:-3.9.3}"
CURATOR_VERSION="${CURATOR_VERSION:-5.9.0}"
CACHE="${STRATA_CACHE:-/root/.cache/strata}"

dep() { # dep GROUP ARTIFACT VERSION: one <dependency> of the throwaway pom
  echo "<dependency><groupId>$1</groupId><artifactId>$2</artifactId><version>$3</version></dependency>"
}

if [ "${1:-}" = curator ]; then
  ROOT="$CACHE/curator/$CURATOR_VERSION"
  STAMP="$ROOT/.complete"
  DEPS="$(dep org.apache.curator curator-recipes "$CURATOR_VERSION")
$(dep org.slf4j slf4j-simple 1.7.36)"
else
  ROOT="$CACHE/zookeeper/$VERSION"
  # Bump when the dependency list below changes, so warm caches refetch.
  STAMP="$ROOT/.complete-2"
  # commons-cli, metrics-core and snappy are optional in ZooKeeper's pom and needed by
  # zkCli and the server at run time.
  DEPS="$(dep org.apache.zookeeper zookeeper "$VERSION")
$(dep commons-cli commons-cli 1.5.0)
$(dep io.dropwizard.metrics metrics-core 4.1.12.1)
$(dep org.xerial.snappy snappy-java 1.1.10.5)
$(dep org.slf4j slf4j-simple 1.7.36)"
fi
LIB="$ROOT/lib"

if [ -f "$STAMP" ]; then
  echo "$LIB"
  exit 0
fi

mkdir -p "$ROOT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>strata</groupId>
  <artifactId>zookeeper-fetch</artifactId>
  <version>1</version>
  <dependencies>
$DEPS
  </dependencies>
</project>
POM
( cd "$work" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$LIB" -DexcludeArtifactIds=logback-classic,logback-core >&2 )
touch "$STAMP"
echo "$LIB"
