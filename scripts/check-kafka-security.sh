#!/usr/bin/env bash
# Kafka security (#17), from outside, with the real binaries and a broker of this script's own
# (the local one stays plaintext). Certificates and SCRAM users are made here. The broker has
# ACLs on (StandardAuthorizer, nothing allowed without an ACL) and three listeners:
#   MTLS  (SSL, client certificates required; the principal is the certificate's CN),
#   SCRAM (SASL_SSL, SCRAM-SHA-512),
#   ADMIN (plaintext on loopback, a super user: topics and ACLs are set up through it).
# The monitor and the ingest worker get exactly the ACLs the README lists, and
# - through each secure listener a probe result travels monitor -> Kafka -> ingest -> PostgreSQL;
# - a client without a certificate, with a certificate of another CA, with a wrong password, or
#   a user without ACLs or lacking one of them (transactional ids, group, Write on the results
#   topic), is refused: the binary exits non-zero within seconds and says why;
# - no password (the SCRAM users', PostgreSQL's) shows in a binary's output.
set -euo pipefail
source "$(dirname "$0")/env.sh"

skip() {
  echo "skipped: check-kafka-security: $1" >&2
  [ -n "${PINGPIPE_SKIPPED_LOG:-}" ] && echo "check-kafka-security: $1" >>"$PINGPIPE_SKIPPED_LOG"
  exit 0
}
[ "$EXTERNAL_DATABASE" = 1 ] && skip "DATABASE_URL is set, this PostgreSQL is not ours"
bin_dir=${PINGPIPE_BIN_DIR:-$CARGO_TARGET_DIR/debug}
LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
[ -f "$LIBS/.complete" ] || "$ROOT/scripts/kafka.sh" fetch

work=$(mktemp -d)
pids=()
broker_pid=
db=pingpipe_test_kafkasec_$$
export PGPASSWORD; PGPASSWORD=$(cat "$STATE_DIR/secrets/postgres_superuser_password")
admin_sql() { psql -X -q -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "${SQL_DB:-postgres}" -v ON_ERROR_STOP=1 "$@"; }
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  if [ -n "$broker_pid" ]; then
    kill -TERM -- "-$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  admin_sql -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  if [ -n "${PINGPIPE_KEEP_WORK:-}" ]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail=0
bad() { log "FAILED: $*"; fail=1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Certificates: a CA, the broker's (naming 127.0.0.1 only), a client certificate per principal,
# and a client certificate of another CA. Keys are PKCS#8 (what Kafka's PEM keystores read).
cert() { # name subject [issuer] [ext]
  local name=$1 subject=$2 issuer=${3:-ca} ext=${4:-}
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$work/$name.key" 2>/dev/null
  openssl req -new -key "$work/$name.key" -subj "$subject" -out "$work/$name.csr" 2>/dev/null
  printf '%s\n' "${ext:-basicConstraints=CA:FALSE}" >"$work/$name.ext"
  openssl x509 -req -in "$work/$name.csr" -CA "$work/$issuer.pem" -CAkey "$work/$issuer.key" \
    -CAcreateserial -days 1 -extfile "$work/$name.ext" -out "$work/$name.pem" 2>/dev/null
}
for ca in ca other-ca; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj "/CN=Pingpipe test $ca" -keyout "$work/$ca.key" -out "$work/$ca.pem" 2>/dev/null
done
cert broker "/CN=broker" ca "subjectAltName=IP:127.0.0.1"
cat "$work/broker.key" "$work/broker.pem" >"$work/broker-keystore.pem"
cert monitor "/CN=monitor"
cert ingest "/CN=ingest"
cert stranger "/CN=stranger"
cert impostor "/CN=monitor" other-ca

# Passwords of the SCRAM users, made here.
pw() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }
monitor_pw=$(pw); ingest_pw=$(pw); stranger_pw=$(pw); partial_pw=$(pw); nogroup_pw=$(pw)
nowrite_pw=$(pw); wrong_pw=$(pw)

admin_port=$(free_port); mtls_port=$(free_port); scram_port=$(free_port); ctrl_port=$(free_port)
mkdir -p "$work/kafka/data" "$work/kafka/logs"
cat >"$work/kafka/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl_port
listeners=ADMIN://127.0.0.1:$admin_port,MTLS://127.0.0.1:$mtls_port,SCRAM://127.0.0.1:$scram_port,CONTROLLER://127.0.0.1:$ctrl_port
advertised.listeners=ADMIN://127.0.0.1:$admin_port,MTLS://127.0.0.1:$mtls_port,SCRAM://127.0.0.1:$scram_port
listener.security.protocol.map=ADMIN:PLAINTEXT,MTLS:SSL,SCRAM:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=ADMIN
controller.listener.names=CONTROLLER
log.dirs=$work/kafka/data

# ACLs on; nothing is allowed without one. The plaintext listeners (loopback, this script's
# own) are ANONYMOUS, the super user; no client of the secure listeners can be ANONYMOUS.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS

ssl.keystore.type=PEM
ssl.keystore.location=$work/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$work/ca.pem
listener.name.mtls.ssl.client.auth=required
# A client certificate's principal is its CN: User:monitor, as a SCRAM user's.
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,DEFAULT
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.scram.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.scram.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=8388608
transaction.abort.timed.out.transaction.cleanup.interval.ms=2000
auto.create.topics.enable=false
PROPS
cat >"$work/kafka/log4j2.properties" <<PROPS
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $work/kafka/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
PROPS
kjava() { java -Xmx192m -Dlog4j2.configurationFile="$work/kafka/log4j2.properties" -cp "$LIBS/*" "$@"; }
cluster_id=$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
kjava kafka.tools.StorageTool format -t "$cluster_id" -c "$work/kafka/server.properties" \
  --add-scram "SCRAM-SHA-512=[name=monitor,password=$monitor_pw]" \
  --add-scram "SCRAM-SHA-512=[name=ingest,password=$ingest_pw]" \
  --add-scram "SCRAM-SHA-512=[name=stranger,password=$stranger_pw]" \
  --add-scram "SCRAM-SHA-512=[name=partial,password=$partial_pw]" \
  --add-scram "SCRAM-SHA-512=[name=nogroup,password=$nogroup_pw]" \
  --add-scram "SCRAM-SHA-512=[name=nowrite,password=$nowrite_pw]" \
  >"$work/kafka/format.log" 2>&1 || die "formatting the test broker failed: $(tail -n 5 "$work/kafka/format.log")"
setsid java -Xms128m -Xmx384m -XX:+UseSerialGC -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$work/kafka/log4j2.properties" -cp "$LIBS/*" \
  kafka.Kafka "$work/kafka/server.properties" >"$work/kafka/logs/stdout.log" 2>&1 </dev/null &
broker_pid=$!
admin_servers=127.0.0.1:$admin_port
wait_for 90 kcat -b "$admin_servers" -L -m 2 \
  || die "the test broker did not start: $(tail -n 20 "$work/kafka/logs/server.log" "$work/kafka/logs/stdout.log")"
log "test broker up: admin $admin_port, mTLS $mtls_port, SASL_SSL/SCRAM $scram_port"

results=$RESULTS_TOPIC
shards=$MONITOR_SHARDS_TOPIC
topic() { kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "$admin_servers" --create --topic "$1" --partitions "$2" --replication-factor 1 >/dev/null; }
acl() { kjava org.apache.kafka.tools.AclCommand --bootstrap-server "$admin_servers" --add "$@" >/dev/null; }
# The ACLs of the README's "Kafka security and ACLs", no more (Read and Write imply Describe).
# In pairs (JVMs start slowly), each waited for by its pid: a bare `wait` waits for the broker.
topic "$results" 3 & first=$!
topic "$shards" 4; wait "$first"
# Users with the monitor's ACLs but one: User:partial lacks the transactional ids', User:nogroup
# the group's, User:nowrite may only see (Describe) the results topic, not write to it.
acl --allow-principal User:monitor --allow-principal User:partial --allow-principal User:nogroup \
  --operation Write --topic "$results" & first=$!
# No Create: the shards topic exists, so the monitor needs none.
acl --allow-principal User:monitor --allow-principal User:partial --allow-principal User:nogroup \
  --allow-principal User:nowrite --operation Read --operation Write --topic "$shards"
wait "$first"
acl --allow-principal User:monitor --allow-principal User:partial --allow-principal User:nowrite \
  --operation Read --resource-pattern-type prefixed --group pingpipe-monitor. & first=$!
acl --allow-principal User:monitor --allow-principal User:nogroup --allow-principal User:nowrite \
  --operation Write --resource-pattern-type prefixed --transactional-id pingpipe-monitor.
wait "$first"
acl --allow-principal User:ingest --operation Read --topic "$results" --group pingpipe-ingest & first=$!
acl --allow-principal User:nowrite --operation Describe --topic "$results"
wait "$first"
log "topics and ACLs set"

# A database, and one target on a local web server.
admin_sql -c "CREATE DATABASE $db OWNER pingpipe" >/dev/null
url="${DATABASE_URL%/*}/$db?sslmode=disable"
DATABASE_URL=$url "$bin_dir/migration" up >"$work/migrate.log" 2>&1 || die "migration failed: $(tail -n 3 "$work/migrate.log")"
web_port=$(free_port)
python3 -m http.server "$web_port" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
pids+=($!)
SQL_DB=$db admin_sql -c "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES (1, 'http://127.0.0.1:$web_port/', 1)" >/dev/null
# Results of target 1 scheduled after $1: what the monitor started after it published.
since() { SQL_DB=$db admin_sql -At -c "SELECT count(*) FROM monitor_results WHERE urltarget_fk = 1 AND scheduled_at > '$1'"; }
stored() { [ "$(since "$1")" -ge 2 ]; }

# $1 name, $2 its log file, then env assignments; runs the binary with a fresh address, in the
# background.
start() {
  local name=$1 log=$2; shift 2
  local addr
  addr=127.0.0.1:$(free_port)
  case $name in
    pingpipe-monitor)
      env DATABASE_URL="$url" PINGPIPE_MINUTE=1s PINGPIPE_MONITOR_SHARDS=4 PINGPIPE_MONITOR_ADDR="$addr" "$@" \
        "$bin_dir/$name" >"$log" 2>&1 & ;;
    pingpipe-ingest)
      env DATABASE_URL="$url" "$@" "$bin_dir/$name" --listen "$addr" >"$log" 2>&1 & ;;
  esac
  pids+=($!)
  last_pid=$!
}
mtls() { # principal
  echo KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$mtls_port" KAFKA_SECURITY_PROTOCOL=ssl \
    KAFKA_SSL_CA_LOCATION="$work/ca.pem" KAFKA_SSL_CERTIFICATE_LOCATION="$work/$1.pem" \
    KAFKA_SSL_KEY_LOCATION="$work/$1.key"
}
scram() { # user password
  echo KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$scram_port" KAFKA_SECURITY_PROTOCOL=SASL_SSL \
    KAFKA_SSL_CA_LOCATION="$work/ca.pem" KAFKA_SASL_MECHANISM=SCRAM-SHA-512 \
    KAFKA_SASL_USERNAME="$1" KAFKA_SASL_PASSWORD="$2"
}
pg_pw=$(cat "$STATE_DIR/secrets/postgres_password")
no_secret() { # log: no password (SCRAM users', PostgreSQL's) appears in it
  local p
  for p in "$monitor_pw" "$ingest_pw" "$stranger_pw" "$partial_pw" "$nogroup_pw" "$nowrite_pw" "$wrong_pw"; do
    if grep -qF -- "$p" "$1"; then bad "a password shows in $(basename "$1")"; fi
  done
  if grep -qF -- "$pg_pw" "$1"; then bad "PostgreSQL's password shows in $(basename "$1")"; fi
}

# End to end through each listener: new results of target 1 reach PostgreSQL.
for listener in mtls scram; do
  if [ $listener = mtls ]; then
    monitor_env=$(mtls monitor); ingest_env=$(mtls ingest)
  else
    monitor_env=$(scram monitor "$monitor_pw"); ingest_env=$(scram ingest "$ingest_pw")
  fi
  # Only results scheduled from now on count: none of the previous listener's monitor.
  now=$(SQL_DB=$db admin_sql -At -c "SELECT now()")
  # shellcheck disable=SC2086 # word splitting of the assignments is meant (no spaces in paths)
  start pingpipe-monitor "$work/$listener-monitor.log" $monitor_env
  # shellcheck disable=SC2086
  start pingpipe-ingest "$work/$listener-ingest.log" $ingest_env
  if wait_for 90 stored "$now"; then
    log "$listener: monitor -> Kafka -> ingest -> PostgreSQL works ($(since "$now") results stored)"
  else
    bad "$listener: no result reached PostgreSQL within 90 s; monitor: $(grep -Ev ' INFO ' "$work/$listener-monitor.log" | tail -n 5); ingest: $(grep -Ev ' INFO ' "$work/$listener-ingest.log" | tail -n 5)"
  fi
  stop_all
  python3 -m http.server "$web_port" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
  pids+=($!)
  no_secret "$work/$listener-monitor.log"
  no_secret "$work/$listener-ingest.log"
done

# Refusals, all at once: each binary must exit non-zero within 30 s, its output naming the reason.
checks=()
refused() { # what expected-pattern name env...
  local what=$1 pattern=$2 name=$3; shift 3
  local log=$work/refused-${#checks[@]}.log
  start "$name" "$log" "$@"
  checks+=("$last_pid|$log|$name with $what|$pattern")
}
no_cert="KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$mtls_port KAFKA_SECURITY_PROTOCOL=ssl KAFKA_SSL_CA_LOCATION=$work/ca.pem"
# shellcheck disable=SC2046,SC2086 # word splitting of the assignments is meant (no spaces in paths)
{
  # The reason itself, before the hint (which names variables and certificates anyway).
  client_cert='refuse this client: [^(]*alert (bad certificate|certificate required)'
  refused "no client certificate" "$client_cert" pingpipe-monitor $no_cert
  refused "no client certificate" "$client_cert" pingpipe-ingest $no_cert
  refused "a certificate of another CA" "$client_cert" pingpipe-ingest $(mtls impostor)
  refused "the wrong CA for the broker" "refuse this client: [^(]*certificate verify failed" pingpipe-monitor \
    $(mtls monitor | sed "s|$work/ca.pem|$work/other-ca.pem|")
  refused "a wrong password" "refuse this client: [^(]*invalid credentials" pingpipe-monitor $(scram monitor "$wrong_pw")
  refused "a wrong password" "refuse this client: [^(]*invalid credentials" pingpipe-ingest $(scram ingest "$wrong_pw")
  refused "a user without ACLs" "refuse this client: not allowed to describe topic $results .*ACLs" pingpipe-ingest $(scram stranger "$stranger_pw")
  refused "a certificate without ACLs" "refuse this client: not allowed to describe topic $results .*ACLs" pingpipe-monitor $(mtls stranger)
  # Each with the other's credentials: the ingest worker may see the results topic but not join
  # its group; the monitor may not see the shards topic.
  refused "the monitor's credentials" "refuse this consumer .*Group authorization failed.*ACLs" pingpipe-ingest $(scram monitor "$monitor_pw")
  refused "the ingest worker's credentials" "refuse this client: not allowed to describe topic $shards .*ACLs" pingpipe-monitor $(mtls ingest)
  refused "no transactional-id ACL" "[Tt]ransactional.?[Ii]d.*[Aa]uthorization" pingpipe-monitor $(scram partial "$partial_pw")
  refused "no group ACL" "refuse this monitor's group membership .*Group authorization failed.*ACLs" \
    pingpipe-monitor $(scram nogroup "$nogroup_pw")
  # Sees the results topic, may not write to it: refused at its first transaction (a group of
  # its own, so that it holds every shard, target 1's included, at once).
  refused "Describe but no Write on the results topic" "[Tt]opic authorization failed.*ACLs" \
    pingpipe-monitor $(scram nowrite "$nowrite_pw") PINGPIPE_MONITOR_INSTANCE=nowrite
  refused "SASL settings on plaintext" "KAFKA_SASL_USERNAME.*KAFKA_SECURITY_PROTOCOL is plaintext" pingpipe-ingest \
    KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$admin_port" KAFKA_SASL_USERNAME=ingest KAFKA_SASL_PASSWORD="$ingest_pw"
  refused "a missing key file" "cannot read KAFKA_SSL_KEY_LOCATION" pingpipe-monitor \
    $(mtls monitor | sed "s|$work/monitor.key|$work/missing.key|")
}
# Not a refusal: a TLS port that accepts and closes at once (a broker restarting, a proxy without
# a backend) is waited for, the binary staying up and not ready.
closing_port=$(free_port)
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
' "$closing_port" &
pids+=($!)
start pingpipe-ingest "$work/closing.log" KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$closing_port" \
  KAFKA_SECURITY_PROTOCOL=ssl KAFKA_SSL_CA_LOCATION="$work/ca.pem"
closing_pid=$last_pid
closing_until=$(( $(date +%s) + 10 ))

deadline=$(( $(date +%s) + 30 ))
for check in "${checks[@]}"; do
  IFS='|' read -r pid log what pattern <<<"$check"
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    bad "$what: still running after 30 s; $(tail -n 3 "$log")"
    continue
  fi
  status=0
  wait "$pid" || status=$?
  if [ "$status" = 0 ]; then
    bad "$what: exited 0"
  elif ! grep -Eq -- "$pattern" "$log"; then
    bad "$what: exited $status without saying /$pattern/: $(tail -n 3 "$log")"
  else
    log "$what: refused, exit $status: $(grep -Eo -- "$pattern.{0,60}" "$log" | head -n 1)"
  fi
  no_secret "$log"
done
# Watched for 10 s at least (librdkafka reconnects within a second at first).
while kill -0 "$closing_pid" 2>/dev/null && [ "$(date +%s)" -lt "$closing_until" ]; do sleep 0.2; done
if kill -0 "$closing_pid" 2>/dev/null && ! grep -q "refuse this" "$work/closing.log" \
  && [ "$(grep -c 'Kafka is not reachable yet\|connection closed by peer' "$work/closing.log")" -ge 2 ]; then
  log "pingpipe-ingest against a port that closes every connection: still up, waiting, after $(grep -c 'connection closed by peer' "$work/closing.log") closed handshakes"
else
  bad "pingpipe-ingest against a port that closes every connection stopped (an outage taken for a refusal): $(grep -v INFO "$work/closing.log" | tail -n 3)"
fi
stop_all

if [ "$fail" != 0 ]; then
  grep -E ' (WARN|ERROR) ' "$work/kafka/logs/server.log" | tail -n 10 >&2 || true
  die "Kafka security check failed"
fi
log "Kafka security: both listeners end to end with the README's ACLs; every refusal stops the binary with its reason"
