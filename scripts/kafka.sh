#!/usr/bin/env bash
# The local Apache Kafka: one KRaft node (combined broker and controller) on 127.0.0.1, run from
# the jars Maven Central serves for org.apache.kafka:kafka_2.13 (see kafka-pom.xml).
# Usage: kafka.sh fetch|up|down|restart|status|topics|create-topic NAME [PARTITIONS]
set -euo pipefail
source "$(dirname "$0")/env.sh"

KAFKA_DIR=$STATE_DIR/kafka
LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
PIDFILE=$KAFKA_DIR/kafka.pid
# The broker's main class and its config, the end of its command line: kafka.pid counts only
# while it names a process with these arguments (see pid_alive in env.sh).
BROKER_ARGS=(kafka.Kafka "$KAFKA_DIR/server.properties")
READINESS_TOPIC=pingpipe.readiness

java_ok() {
  command -v java >/dev/null && java -version 2>&1 | head -n1 | grep -Eq '"(1[7-9]|[2-9][0-9])[."]'
}

# The broker's runtime jars, fetched once into the cache (later fetches hit ~/.m2).
fetch() {
  java_ok || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  [ -f "$LIBS/.complete" ] && return 0
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
  rm -rf "$LIBS"
  mkdir -p "$CACHE_DIR"
  # --strict-checksums: a jar whose checksum differs from Maven Central's fails the fetch.
  mvn -q -B --strict-checksums -f "$ROOT/scripts/kafka-pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS" \
    >"$CACHE_DIR/mvn-kafka.log" 2>&1 \
    || die "could not fetch the Kafka jars with Maven; see $CACHE_DIR/mvn-kafka.log"
  touch "$LIBS/.complete"
}

kjava() {
  java -Xmx256m -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" -cp "$LIBS/*" "$@"
}

write_config() {
  mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  cat >"$KAFKA_DIR/server.properties" <<PROPS
# Written by scripts/kafka.sh; edits are overwritten on the next \`make up\`.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DIR/data

# One node: replication factor 1 everywhere.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1

# A small machine and fast tests: no 50-partition internal topics, no rebalance delay, a small
# cleaner buffer, and a dead producer's open transaction aborted within seconds.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=8388608
transaction.abort.timed.out.transaction.cleanup.interval.ms=2000
transaction.max.timeout.ms=900000

# A typo in a topic name fails loudly instead of creating a topic.
auto.create.topics.enable=false
num.partitions=$RESULTS_PARTITIONS
PROPS
  cat >"$KAFKA_DIR/log4j2.properties" <<PROPS
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $KAFKA_DIR/logs/server.log
appender.file.filePattern = $KAFKA_DIR/logs/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = info
PROPS
}

format_storage() {
  local idfile=$KAFKA_DIR/cluster-id
  [ -s "$idfile" ] || kjava kafka.tools.StorageTool random-uuid | tail -n1 >"$idfile"
  kjava kafka.tools.StorageTool format --ignore-formatted -t "$(cat "$idfile")" \
    -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/format.log" 2>&1 \
    || die "formatting Kafka storage failed; see $KAFKA_DIR/format.log"
}

topic_cmd() {
  kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" "$@"
}

# create_topic NAME PARTITIONS: creates the topic unless it exists (a partition count that
# differs from an existing topic's is left as it is).
create_topic() {
  topic_cmd --create --if-not-exists --topic "$1" --partitions "$2" --replication-factor 1 >/dev/null
}

# Ready means a client can produce and consume: a token goes in and comes back out.
roundtrip() {
  local token; token="ready-$$-$RANDOM"
  printf '%s\n' "$token" | kcat -b "$KAFKA_BOOTSTRAP_SERVERS" -P -t "$READINESS_TOPIC" -X message.timeout.ms=5000 2>/dev/null || return 1
  kcat -b "$KAFKA_BOOTSTRAP_SERVERS" -C -t "$READINESS_TOPIC" -o -20 -e -q 2>/dev/null | grep -qx "$token"
}

up() {
  apt_install kcat
  if [ "$EXTERNAL_KAFKA" = 1 ]; then
    log "KAFKA_BOOTSTRAP_SERVERS is set: using $KAFKA_BOOTSTRAP_SERVERS, starting no broker"
  else
    fetch
    if pid_alive "$PIDFILE" "${BROKER_ARGS[@]}"; then
      log "Kafka already running (pid $(cat "$PIDFILE"))"
    else
      write_config
      format_storage
      log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
      # Its own process group, detached from this shell; the explicit heap replaces the
      # default of a quarter of RAM that Kafka's own scripts would have avoided.
      setsid java -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
        -cp "$LIBS/*" "${BROKER_ARGS[@]}" \
        >"$KAFKA_DIR/logs/stdout.log" 2>&1 </dev/null &
      echo $! >"$PIDFILE"
    fi
  fi
  wait_for 60 kcat -b "$KAFKA_BOOTSTRAP_SERVERS" -L -m 2 \
    || die "Kafka does not answer on $KAFKA_BOOTSTRAP_SERVERS within 60s; see $KAFKA_DIR/logs/server.log"
  fetch
  create_topic "$READINESS_TOPIC" 1
  create_topic "$RESULTS_TOPIC" "$RESULTS_PARTITIONS"
  create_topic "$MONITOR_SHARDS_TOPIC" "$MONITOR_SHARDS"
  wait_for 60 roundtrip || die "Kafka on $KAFKA_BOOTSTRAP_SERVERS does not produce and consume within 60s"
}

down() {
  [ "$EXTERNAL_KAFKA" = 1 ] && return
  if pid_alive "$PIDFILE" "${BROKER_ARGS[@]}"; then
    log "stopping Kafka"
    stop_pid "$PIDFILE" 60 "${BROKER_ARGS[@]}"
  fi
}

# Stops and starts the local broker (tests use it to prove recovery without a worker restart).
restart() {
  [ "$EXTERNAL_KAFKA" = 1 ] && die "KAFKA_BOOTSTRAP_SERVERS points elsewhere: not restarting it"
  down
  up
}

status() {
  if [ "$EXTERNAL_KAFKA" = 1 ]; then echo "kafka: external ($KAFKA_BOOTSTRAP_SERVERS)"; return; fi
  if pid_alive "$PIDFILE" "${BROKER_ARGS[@]}"; then
    echo "kafka: running on $KAFKA_BOOTSTRAP_SERVERS (pid $(cat "$PIDFILE"), data $KAFKA_DIR/data)"
  else
    echo "kafka: stopped"
    return 1
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  restart) restart ;;
  status) status ;;
  topics) fetch; topic_cmd --describe ;;
  create-topic) fetch; create_topic "$2" "${3:-1}" ;;
  *) echo "usage: $0 fetch|up|down|restart|status|topics|create-topic NAME [PARTITIONS]" >&2; exit 2 ;;
esac
