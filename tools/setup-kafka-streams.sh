#!/usr/bin/env bash
# Puts Kafka Streams (and RocksDB's JNI jar, which it loads) under
# /root/.cache/strata/kafka-streams/<version>/libs, fetched from Maven Central with a
# throwaway pom, for the exactly-once test of a Streams application
# (tests/python/test_streams_eos.py). The Kafka client jars come with it; logging is the
# one tools/setup-kafka.sh installs. Idempotent: a finished install is marked with
# libs/.complete.
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-$(sed -n 's/^KAFKA_VERSION="${KAFKA_VERSION:-\(.*\)}"$/\1/p' "$(dirname "$0")/setup-kafka.sh")}"
CACHE="${STRATA_CACHE:-/root/.cache/strata}"
LIBS="$CACHE/kafka-streams/$KAFKA_VERSION/libs"

if [[ -f "$LIBS/.complete" ]]; then
    echo "Kafka Streams $KAFKA_VERSION already in $LIBS"
    exit 0
fi
command -v mvn >/dev/null || { echo "setup-kafka-streams: 'mvn' is not installed" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.strata.tools</groupId>
  <artifactId>kafka-streams-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-streams</artifactId><version>$KAFKA_VERSION</version></dependency>
  </dependencies>
</project>
POM
echo "Fetching Kafka Streams $KAFKA_VERSION from Maven Central into $LIBS ..."
rm -rf "$LIBS.partial"
mvn -q -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS.partial" 2>&1 |
    sed -u 's/\x1b\[[0-9;]*m//g'
touch "$LIBS.partial/.complete"
rm -rf "$LIBS"
mv "$LIBS.partial" "$LIBS"
echo "Kafka Streams $KAFKA_VERSION in $LIBS"
