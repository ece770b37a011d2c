#!/usr/bin/env bash
# Puts Apache Kafka's jars (broker, CLI tools, Java client and their runtime
# dependencies) under /root/.cache/strata/kafka/<version>/libs, fetched from Maven
# Central with a throwaway pom. Idempotent: a finished install is marked with
# libs/.complete and a second run returns at once.
#
# Used for side-by-side tests and benchmarks against the real thing; run classes
# from it with tools/kafka-class.sh.
#
# The version is KAFKA_VERSION or the first argument: `tools/setup-kafka.sh 3.9.1` puts
# Kafka 3.9.1 (the last line with ZooKeeper mode) beside the default.
set -euo pipefail

# 4.3.1 is the newest 4.x with every artifact published (4.4.0 lacks kafka-tools on
# Maven Central).
KAFKA_VERSION="${KAFKA_VERSION:-4.3.1}"
KAFKA_VERSION="${1:-$KAFKA_VERSION}"
# Log4j 2 is Kafka 4's logging backend; the slf4j 1.x binding (Kafka uses slf4j-api 1.7) routes the client and
# tool logging through the same quiet configuration.
LOG4J_VERSION="2.24.3"
# Kafka 3.x logs through log4j 1.x, as reload4j with its slf4j binding (what Kafka 3.9's
# own distribution ships).
RELOAD4J_VERSION="1.2.25"
SLF4J_RELOAD4J_VERSION="1.7.36"
CACHE="${STRATA_CACHE:-/root/.cache/strata}"
HOME_DIR="$CACHE/kafka/$KAFKA_VERSION"
LIBS="$HOME_DIR/libs"

if [[ -f "$LIBS/.complete" ]]; then
    echo "Apache Kafka $KAFKA_VERSION already in $LIBS"
    exit 0
fi

for tool in mvn java; do
    command -v "$tool" >/dev/null || { echo "setup-kafka: '$tool' is not installed" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ "$KAFKA_VERSION" == 3.* ]]; then
    logging_deps="    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>$RELOAD4J_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>$SLF4J_RELOAD4J_VERSION</version></dependency>"
else
    logging_deps="    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-1.2-api</artifactId><version>$LOG4J_VERSION</version></dependency>"
fi

cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.strata.tools</groupId>
  <artifactId>apache-kafka-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-clients</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-server</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-metadata</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>$KAFKA_VERSION</version></dependency>
$logging_deps
  </dependencies>
</project>
POM

echo "Fetching Apache Kafka $KAFKA_VERSION from Maven Central into $LIBS ..."
rm -rf "$LIBS.partial"
# -q leaves only errors; Maven 3.8 still emits colour resets even in batch mode, so
# they are stripped.
mvn -q -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS.partial" 2>&1 |
    sed -u 's/\x1b\[[0-9;]*m//g'

mkdir -p "$HOME_DIR/config"
# WARN to stderr keeps the broker quiet and the tools' stdout (console consumer
# output, topic listings) clean enough to compare in tests. Kafka 3.x reads the log4j
# 1.x file, Kafka 4 the log4j2 one; both are written so either version finds its own.
cat >"$HOME_DIR/config/log4j.properties" <<'LOG'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
LOG
cat >"$HOME_DIR/config/log4j2.properties" <<'LOG'
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
LOG

rm -rf "$LIBS"
mv "$LIBS.partial" "$LIBS"
touch "$LIBS/.complete"
echo "Apache Kafka $KAFKA_VERSION: $(ls "$LIBS" | wc -l) jars in $LIBS"
