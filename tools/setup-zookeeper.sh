#!/usr/bin/env bash
# Fetch Apache ZooKeeper (server, zkCli and their dependencies) from Maven Central into
# /root/.cache/strata/zookeeper/<version>/lib. Idempotent: a warm cache returns at once.
# Used by tests/java/zkcli.sh (zkCli against strata-coordinator) and bench/zk/run.sh
# (Apache ZooKeeper ensemble as the baseline).
set -euo pipefail

VERSION="${ZOOKEEPER_VERSION:-3.9.3}"
ROOT="${STRATA_CACHE:-/root/.cache/strata}/zookeeper/$VERSION"
LIB="$ROOT/lib"

# Bump when the dependency list below changes, so warm caches refetch.
STAMP="$ROOT/.complete-2"
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
    <dependency>
      <groupId>org.apache.zookeeper</groupId>
      <artifactId>zookeeper</artifactId>
      <version>$VERSION</version>
    </dependency>
    <!-- Optional in ZooKeeper's pom, needed by zkCli and the server at run time. -->
    <dependency>
      <groupId>commons-cli</groupId>
      <artifactId>commons-cli</artifactId>
      <version>1.5.0</version>
    </dependency>
    <dependency>
      <groupId>io.dropwizard.metrics</groupId>
      <artifactId>metrics-core</artifactId>
      <version>4.1.12.1</version>
    </dependency>
    <dependency>
      <groupId>org.xerial.snappy</groupId>
      <artifactId>snappy-java</artifactId>
      <version>1.1.10.5</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
POM
( cd "$work" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$LIB" -DexcludeArtifactIds=logback-classic,logback-core >&2 )
touch "$STAMP"
echo "$LIB"
