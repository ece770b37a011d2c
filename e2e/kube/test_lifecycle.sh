# Day-2 on real pods: scaling through the scale subresource, a spec the operator refuses,
# the operator's own metrics, deleting the cluster, and moving the install to a namespaced
# one. Sourced by run.sh after test_topics.sh.

section "scaling"
# balanced N: kafka-topics --describe (every topic, internal ones too) shows brokers
# 0..N-1 each holding replicas within one of the mean and no replica on any other broker.
balanced() {
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --describe | awk -v n="$1" '
    /Partition:/ { for (i = 1; i <= NF; i++) if ($i == "Replicas:") {
      k = split($(i + 1), r, ","); for (j = 1; j <= k; j++) { c[r[j]]++; total++ } } }
    END {
      mean = total / n; bad = total == 0
      for (b in c) if (b + 0 >= n) { print "broker " b " still holds " c[b] " replicas"; bad = 1 }
      for (b = 0; b < n; b++) { d = c[b] - mean
        if (d > 1 || d < -1) { print "broker " b ": " c[b] + 0 " replicas, mean " mean; bad = 1 } }
      exit bad
    }'
}
operation() { jsonpath kc demo "$NS" '{.status.operation.kind} {.status.operation.brokers}'; }
# watch_min_isr: until $WORK/stop-watch exists, Kafka's tool lists the partitions below
# min.insync.replicas into $WORK/under-min-isr; each answered poll adds a line to
# $WORK/min-isr-polls (a poll that timed out, e.g. reaching a pod that just went, is not
# an observation). Not kafka_tool: the hosts file it rewrites is only read here.
watch_min_isr() {
  : >"$WORK/min-isr-polls"
  : >>"$WORK/under-min-isr"
  local out
  while [[ ! -f "$WORK/stop-watch" ]]; do
    if out="$(KAFKA_OPTS="-Djdk.net.hosts.file=$WORK/hosts" "$REPO/tools/kafka-class.sh" \
      org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --describe \
      --under-min-isr-partitions 2>/dev/null)"; then
      echo ok >>"$WORK/min-isr-polls"
      grep -F "Partition:" <<<"$out" >>"$WORK/under-min-isr" || true
    fi
  done
}
# restart_operator: deletes the operator's pod; succeeds once another one has replaced it.
restart_operator() {
  local old
  old="$(kubectl -n "$OPERATOR_NS" get pods -l app.kubernetes.io/name=strata-operator -o jsonpath='{.items[0].metadata.name}')"
  [[ -n "$old" ]] && kubectl -n "$OPERATOR_NS" delete pod "$old" --wait=false >/dev/null || return 1
  local deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    kubectl -n "$OPERATOR_NS" get pods -l app.kubernetes.io/name=strata-operator -o json |
      jq -e --arg old "$old" 'any(.items[]; .metadata.name != $old and .metadata.deletionTimestamp == null)' >/dev/null && return 0
    sleep 1
  done
  return 1
}
export -f balanced operation restart_operator
# A producer with acks=all (Kafka's VerifiableProducer) writes through the scale-up, the
# drain and the rolling restart; at the end every record it saw acknowledged is read back.
# Pod IPs change as pods restart, so the hosts file it resolves with is kept fresh.
check "topic 'durable': 3 partitions, RF=3, min.insync.replicas=2" kafka_tool org.apache.kafka.tools.TopicCommand \
  --bootstrap-server "$BOOTSTRAP" --create --topic durable --partitions 3 --replication-factor 3 \
  --config min.insync.replicas=2
rm -f "$WORK/stop-producer"
( while [[ ! -f "$WORK/stop-producer" ]]; do write_hosts 2>/dev/null; sleep 2; done ) &
HOSTS_REFRESH=$!
KAFKA_OPTS="-Djdk.net.hosts.file=$WORK/hosts -Dsun.net.inetaddr.ttl=1" "$REPO/tools/kafka-class.sh" \
  org.apache.kafka.tools.VerifiableProducer --bootstrap-server "$BOOTSTRAP" --topic durable \
  --acks -1 --throughput 20 --max-messages -1 >"$WORK/producer.jsonl" 2>"$WORK/producer.log" &
PRODUCER=$!
# A consumer group reads along the whole time (Kafka's VerifiableConsumer, committing as
# it goes), its coordinator moving with the brokers.
KAFKA_OPTS="-Djdk.net.hosts.file=$WORK/hosts -Dsun.net.inetaddr.ttl=1" "$REPO/tools/kafka-class.sh" \
  org.apache.kafka.tools.VerifiableConsumer --bootstrap-server "$BOOTSTRAP" --topic durable \
  --group-id durable-readers --reset-policy earliest --verbose >"$WORK/consumer.jsonl" 2>"$WORK/consumer.log" &
CONSUMER=$!
acked() { jq -r 'select(.name == "producer_send_success") | .value' "$WORK/producer.jsonl" 2>/dev/null | wc -l; }
export -f acked
eventually "the producer's first records are acknowledged" bash -c "(( \$(acked) > 20 ))"

SCALE_STARTED=$SECONDS
check "kubectl scale kafkacluster/demo --replicas=5 (scale subresource)" kc scale kafkacluster/demo --replicas=5
eventually "kubectl scale moves the broker StatefulSet to 5" equals 5 jsonpath sts demo-broker "$NS" '{.spec.replicas}'
check "coordinator StatefulSet untouched by a broker scale" equals 3 jsonpath sts demo-coordinator "$NS" '{.spec.replicas}'
check "scale subresource reads the replica count" equals 5 bash -c \
  "kubectl -n $NS get --raw /apis/strata.dev/v1alpha1/namespaces/$NS/kafkaclusters/demo/scale | jq .spec.replicas"
eventually "status.operation: a Rebalance onto brokers 3 and 4" equals "Rebalance [3,4]" operation
# The operator restarted mid-operation resumes it from status.operation.
check "deleting the operator pod while the rebalance waits for the new brokers" restart_operator
WAIT_SECONDS=240 eventually "5 broker pods Ready" equals 5 ready_pods broker
eventually "5 brokers registered in the same cluster" equals "[0, 1, 2, 3, 4]" zk ls /brokers/ids
WAIT_SECONDS=240 eventually "the rebalance finishes (status.operation cleared)" equals " " operation
eventually "Event 'Rebalanced' recorded" contains Rebalanced bash -c "kubectl -n $NS get events -o jsonpath='{.items[*].reason}'"
eventually "kafka-topics --describe: replicas within one of the mean on each of the 5 brokers" balanced 5
eventually "the RF=3 topic is fully in sync after the moves" in_sync events 3 3
check "no replication throttle left on the brokers" bash -c \
  "! kafka_tool org.apache.kafka.tools.ConfigCommand --bootstrap-server $BOOTSTRAP --describe --entity-type brokers --entity-default | grep -q throttled"
eventually "status: Ready=True with 5/5 brokers" equals "True 5" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.brokers.ready}'
mark "scale 3 to 5 brokers with the rebalance" "$SCALE_STARTED"

# Back to 3: brokers 3 and 4 hold replicas now, so they are drained first. Meanwhile the
# ISR of every partition is watched with Kafka's tool.
DRAIN_STARTED=$SECONDS
rm -f "$WORK/under-min-isr" "$WORK/stop-watch"
watch_min_isr &
WATCH_PID=$!
check "editing spec.brokers.replicas to 3" kc patch kc demo --type=merge -p '{"spec":{"brokers":{"replicas":3}}}'
check "the StatefulSet keeps 5 pods while brokers 3 and 4 are drained" equals 5 jsonpath sts demo-broker "$NS" '{.spec.replicas}'
eventually "Event 'Draining' recorded" contains Draining bash -c "kubectl -n $NS get events -o jsonpath='{.items[*].reason}'"
# A drain may wait on a passing condition before it begins; what it waited for is shown.
kubectl -n "$NS" get events -o json |
  jq -r '.items[] | select(.reason == "DrainBlocked") | "  (event) DrainBlocked: \(.message)"' || true
check "deleting the operator pod as the drain starts" restart_operator
WAIT_SECONDS=240 eventually "after the drain the StatefulSet shrinks to 3" equals 3 jsonpath sts demo-broker "$NS" '{.spec.replicas}'
check "Event 'Drained' recorded" contains Drained bash -c "kubectl -n $NS get events -o jsonpath='{.items[*].reason}'"
check "no replica left on brokers 3 and 4; replicas balanced over 0..2" balanced 3
WAIT_SECONDS=120 eventually "brokers 3 and 4 leave the cluster with their pods" equals "[0, 1, 2]" zk ls /brokers/ids
eventually "the RF=3 topic is still fully in sync" in_sync events 3 3
touch "$WORK/stop-watch"; wait "$WATCH_PID" 2>/dev/null || true
check "no partition went below min.insync.replicas during the drain" equals "" cat "$WORK/under-min-isr"
check "(the ISR watch answered during the drain)" bash -c "[[ -s $WORK/min-isr-polls ]]"
mark "drain 5 to 3 brokers" "$DRAIN_STARTED"

check "scaling below the replication factor (2 brokers, RF=3 topics)" kc patch kc demo --type=merge -p '{"spec":{"brokers":{"replicas":2}}}'
eventually "Degraded=True reason DrainBlocked, naming the topics" contains "True DrainBlocked 2 broker(s) would remain" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Degraded")].status} {.status.conditions[?(@.type=="Degraded")].reason} {.status.conditions[?(@.type=="Degraded")].message}'
check "the blocked drain removed no pod" equals 3 jsonpath sts demo-broker "$NS" '{.spec.replicas}'
check "back to 3 brokers" kc patch kc demo --type=merge -p '{"spec":{"brokers":{"replicas":3}}}'
eventually "Degraded=False and no operation once the spec is back" equals "False  " \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Degraded")].status} {.status.operation.kind} {.status.operation.brokers}'

section "rolling restart"
# on_revision [COMPONENT]: how many broker (or COMPONENT) pods run their StatefulSet's
# update revision and are Ready.
on_revision() {
  local component="${1:-broker}" rev
  rev="$(kubectl -n "$NS" get sts "demo-$component" -o jsonpath='{.status.updateRevision}')"
  kubectl -n "$NS" get pods -l "app.kubernetes.io/instance=demo,app.kubernetes.io/component=$component" -o json |
    jq --arg rev "$rev" '[.items[] | select(.metadata.labels["controller-revision-hash"] == $rev
      and .metadata.deletionTimestamp == null
      and any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length'
}
# outdated: how many broker pods still run an older revision.
outdated() {
  local rev
  rev="$(kubectl -n "$NS" get sts demo-broker -o jsonpath='{.status.updateRevision}')"
  kubectl -n "$NS" get pods -l app.kubernetes.io/instance=demo,app.kubernetes.io/component=broker -o json |
    jq --arg rev "$rev" '[.items[] | select(.metadata.labels["controller-revision-hash"] != $rev)] | length'
}
export -f on_revision outdated
check "the broker StatefulSet leaves restarts to the operator (OnDelete)" equals OnDelete \
  jsonpath sts demo-broker "$NS" '{.spec.updateStrategy.type}'
ROLL_STARTED=$SECONDS
rm -f "$WORK/under-min-isr" "$WORK/stop-watch" "$WORK/ready-counts"
watch_min_isr &
ISR_WATCH=$!
(
  while [[ ! -f "$WORK/stop-watch" ]]; do ready_pods broker >>"$WORK/ready-counts" 2>/dev/null; sleep 1; done
) &
READY_WATCH=$!
check "a broker config change (spec.brokers.config)" \
  kc patch kc demo --type=merge -p '{"spec":{"brokers":{"config":{"log.retention.check.interval.ms":"120000"}}}}'
eventually "status.operation: a RollingRestart with a broker pod in flight" bash -c \
  "[[ \"\$(kubectl -n $NS get kc demo -o jsonpath='{.status.operation.kind} {.status.operation.podUid}')\" == 'RollingRestart '?* ]]"
check "deleting the operator pod in the middle of the roll" restart_operator
WAIT_SECONDS=420 eventually "the roll restarts every broker onto the new revision" equals 3 on_revision
eventually "the roll completes (Event RollComplete, status.operation cleared)" bash -c \
  "kubectl -n $NS get events -o jsonpath='{.items[*].reason}' | grep -q RollComplete && [[ -z \"\$(kubectl -n $NS get kc demo -o jsonpath='{.status.operation}')\" ]]"
touch "$WORK/stop-watch"; wait "$ISR_WATCH" "$READY_WATCH" 2>/dev/null || true
check "one broker at a time: never fewer than 2 of 3 broker pods Ready" bash -c "sort -n $WORK/ready-counts | head -1 | grep -qx '[23]'"
check "no partition went below min.insync.replicas during the roll" equals "" cat "$WORK/under-min-isr"
check "(the ISR watch answered during the roll, 3+ times)" bash -c "(( \$(wc -l <$WORK/min-isr-polls) >= 3 ))"
eventually "the RF=3 topic is fully in sync after the roll" in_sync events 3 3
mark "rolling restart of 3 brokers" "$ROLL_STARTED"

section "TLS listener: a Secret's certificate served, then renewed by a roll"
# A test CA and certificates for every broker pod and the bootstrap Service (Kafka's
# clients check the name), as cert-manager or a user would put them in a Secret.
TLS="$WORK/tls"
mkdir -p "$TLS"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=demo test CA" \
  -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
# tls_cert NAME: $TLS/NAME.key and NAME.crt, signed by the test CA.
tls_cert() {
  openssl req -newkey rsa:2048 -nodes -subj "/CN=demo-broker" -keyout "$TLS/$1.key" -out "$TLS/$1.csr" 2>/dev/null
  printf 'subjectAltName=DNS:*.demo-broker.%s.svc,DNS:demo-bootstrap.%s.svc\n' "$NS" "$NS" >"$TLS/$1.ext"
  openssl x509 -req -in "$TLS/$1.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial -days 30 \
    -extfile "$TLS/$1.ext" -out "$TLS/$1.crt" 2>/dev/null
}
# serials_served: the serial of the certificate each broker pod serves on 9093.
serials_served() {
  local i ip
  for i in 0 1 2; do
    ip="$(kubectl -n "$NS" get pod "demo-broker-$i" -o jsonpath='{.status.podIP}')"
    openssl s_client -connect "$ip:9093" -servername "demo-broker-$i.demo-broker.$NS.svc" </dev/null 2>/dev/null |
      openssl x509 -noout -serial 2>/dev/null
  done | sort | uniq -c | awk '{print $1, $2}'
}
# tls_round_trip: a record produced and read back over SSL, the server checked against
# the test CA by Kafka's console clients.
tls_round_trip() {
  local value="over-tls-$RANDOM$RANDOM"
  printf 'security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=%s\n' "$TLS/ca.crt" >"$TLS/client.properties"
  echo "$value" | kafka_tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "demo-bootstrap.$NS.svc:9093" \
    --topic tls-check --producer.config "$TLS/client.properties" --producer-property acks=all >/dev/null 2>&1 || return 1
  kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "demo-bootstrap.$NS.svc:9093" \
    --topic tls-check --consumer.config "$TLS/client.properties" --from-beginning --timeout-ms 20000 2>/dev/null |
    grep -qx "$value"
}
# new_broker_revision REV: the broker StatefulSet's update revision differs from REV.
new_broker_revision() { [[ "$(kubectl -n "$NS" get sts demo-broker -o jsonpath='{.status.updateRevision}')" != "$1" ]]; }
export -f tls_cert serials_served tls_round_trip new_broker_revision
TLS_STARTED=$SECONDS
tls_cert first
check "topic 'tls-check'" kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
  --create --topic tls-check --partitions 1 --replication-factor 3
check "a listener naming a Secret that does not exist yet" \
  kc patch kc demo --type=merge -p '{"spec":{"listeners":{"tls":{"port":9093,"secretName":"demo-tls"}}}}'
eventually "Degraded=True naming the missing Secret" contains "True InvalidSpec spec.listeners.tls.secretName: Secret demo-tls does not exist" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Degraded")].status} {.status.conditions[?(@.type=="Degraded")].reason} {.status.conditions[?(@.type=="Degraded")].message}'
REV_BEFORE="$(jsonpath sts demo-broker "$NS" '{.status.updateRevision}')"
check "no broker restarted for it" equals 3 on_revision
check "the Secret created (kubectl create secret tls)" \
  kubectl -n "$NS" create secret tls demo-tls --cert="$TLS/first.crt" --key="$TLS/first.key"
eventually "the Secret's watch brings a new broker revision" new_broker_revision "$REV_BEFORE"
WAIT_SECONDS=420 eventually "the roll puts every broker on it" equals 3 on_revision
eventually "the roll completes; Degraded=False" equals "False " \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Degraded")].status} {.status.operation}'
FIRST_SERIAL="$(openssl x509 -noout -serial -in "$TLS/first.crt")"
eventually "every broker serves the certificate on 9093" equals "3 $FIRST_SERIAL" serials_served
eventually "Kafka's console clients produce and consume over SSL, checking the CA and the names" tls_round_trip
# Renewal: a new certificate in the same Secret rolls the brokers onto it, one at a time,
# while the acks=all producer of this section keeps going (checked below).
tls_cert second
REV_BEFORE="$(jsonpath sts demo-broker "$NS" '{.status.updateRevision}')"
check "the Secret renewed in place" bash -c \
  "kubectl -n $NS create secret tls demo-tls --cert=$TLS/second.crt --key=$TLS/second.key --dry-run=client -o yaml | kubectl apply -f - >/dev/null"
eventually "the renewal brings a new broker revision" new_broker_revision "$REV_BEFORE"
WAIT_SECONDS=420 eventually "the roll puts every broker on the renewed certificate" equals 3 on_revision
SECOND_SERIAL="$(openssl x509 -noout -serial -in "$TLS/second.crt")"
eventually "every broker serves the renewed certificate" equals "3 $SECOND_SERIAL" serials_served
eventually "status.operation cleared after the renewal roll" equals "" jsonpath kc demo "$NS" '{.status.operation}'
eventually "SSL clients go on with the renewed certificate" tls_round_trip
mark "TLS listener enabled and its certificate renewed (2 rolls)" "$TLS_STARTED"

section "coordinator roll"
# coordinator_restarts: the operator's RestartingCoordinator events, oldest first.
coordinator_restarts() {
  kubectl -n "$NS" get events -o json | jq -r '[.items[] | select(.reason == "RestartingCoordinator")]
    | sort_by(.eventTime // .lastTimestamp // .firstTimestamp) | .[].message'
}
# coordinators_down: how many of the 3 coordinator pods are missing, being deleted or
# without a running container. (Ready is no measure here: when the leader restarts, the
# followers leave the quorum until they elect a new one, and their probes say so.)
coordinators_down() {
  kubectl -n "$NS" get pods -l app.kubernetes.io/instance=demo,app.kubernetes.io/component=coordinator -o json |
    jq '3 - ([.items[] | select(.metadata.deletionTimestamp == null
      and any(.status.containerStatuses[]?; .state.running != null))] | length)'
}
# newest_coordinator: the coordinator pod created last.
newest_coordinator() {
  kubectl -n "$NS" get pods -l app.kubernetes.io/instance=demo,app.kubernetes.io/component=coordinator -o json |
    jq -r '.items | sort_by(.metadata.creationTimestamp) | last | .metadata.name'
}
export -f coordinator_restarts coordinators_down newest_coordinator
check "the coordinator StatefulSet leaves restarts to the operator (OnDelete)" equals OnDelete \
  jsonpath sts demo-coordinator "$NS" '{.spec.updateStrategy.type}'
COORDINATOR_ROLL_STARTED=$SECONDS
LEADER_BEFORE="$(jsonpath kc demo "$NS" '{.status.coordinator.leader}')"
rm -f "$WORK/stop-watch" "$WORK/coordinators-down"
(
  while [[ ! -f "$WORK/stop-watch" ]]; do coordinators_down >>"$WORK/coordinators-down" 2>/dev/null; sleep 1; done
) &
READY_WATCH=$!
check "a coordinator change (spec.coordinator.resources)" \
  kc patch kc demo --type=merge -p '{"spec":{"coordinator":{"resources":{"requests":{"memory":"64Mi"}}}}}'
# A member in flight has its pod UID recorded, through the phases Restarting (just
# deleted) and Waiting (for it to rejoin the quorum).
eventually "status.coordinator.roll: a member in flight" bash -c \
  "[[ -n \"\$(kubectl -n $NS get kc demo -o jsonpath='{.status.coordinator.roll.podUid}')\" ]]"
check "deleting the operator pod in the middle of the coordinator roll" restart_operator
WAIT_SECONDS=300 eventually "the roll restarts every coordinator onto the new revision" equals 3 on_revision coordinator
eventually "the roll completes (Event CoordinatorRollComplete, status.coordinator.roll cleared)" bash -c \
  "kubectl -n $NS get events -o jsonpath='{.items[*].reason}' | grep -q CoordinatorRollComplete && [[ -z \"\$(kubectl -n $NS get kc demo -o jsonpath='{.status.coordinator.roll}')\" ]]"
touch "$WORK/stop-watch"; wait "$READY_WATCH" 2>/dev/null || true
coordinator_restarts | sed 's/^/  (event) /'
echo "  (most coordinator pods down at once: $(sort -n "$WORK/coordinators-down" | tail -1))"
check "one coordinator at a time: never two pods down at once" bash -c "sort -n $WORK/coordinators-down | tail -1 | grep -qx '[01]'"
# Followers keep their leader while they restart; the pod that led before the roll must
# be the last one re-created.
check "the leader last: $LEADER_BEFORE, which led before the roll, was restarted last" equals "$LEADER_BEFORE" newest_coordinator
eventually "the ensemble is whole again: one leader, two followers" equals "follower follower leader " coordinator_modes
check "no broker pod was restarted for it" equals 3 on_revision
mark "coordinator roll (3 members)" "$COORDINATOR_ROLL_STARTED"

section "coordinator ensemble 3 -> 5 -> 3 by reconfiguration"
# The producer and the consumer group go on through it. Members join and leave by
# ZooKeeper's reconfig, driven by the operator; nobody restarts for it.
RECONFIG_STARTED=$SECONDS
# first_uids: the UIDs of coordinator pods 0-2.
first_uids() {
  kubectl -n "$NS" get pod demo-coordinator-0 demo-coordinator-1 demo-coordinator-2 \
    -o jsonpath='{.items[*].metadata.uid}'
}
# config_members: the server ids /zookeeper/config names, as coordinator 0 answers.
config_members() { zk config | sed -n 's/^server\.\([0-9]*\)=.*/\1/p' | sort -n | tr '\n' ' '; }
# config_version: the version of the active configuration, as the status reports it.
config_version() { jsonpath kc demo "$NS" '{.status.coordinator.configVersion}'; }
export -f first_uids config_members config_version
UIDS_BEFORE="$(first_uids)"
check "the ensemble starts from its static configuration" equals "1 2 3 " config_members
check "spec.coordinator.replicas: 3 -> 5" \
  kc patch kc demo --type=merge -p '{"spec":{"coordinator":{"replicas":5}}}'
WAIT_SECONDS=300 eventually "coordinators 4 and 5 join: the configuration names five voters" \
  equals "1 2 3 4 5 " config_members
eventually "Event Reconfigured" contains Reconfigured bash -c \
  "kubectl -n $NS get events -o jsonpath='{.items[*].reason}'"
GROWN_VERSION="$(config_version)"
check "status.coordinator.configVersion is the reconfiguration's zxid ($GROWN_VERSION)" \
  bash -c "[[ -n '$GROWN_VERSION' && '$GROWN_VERSION' != 0 ]]"
eventually "5 coordinator pods Ready" equals 5 ready_pods coordinator
check "no coordinator of the first three restarted for it" equals "$UIDS_BEFORE" first_uids
check "no broker restarted for it" equals 3 on_revision
check "the brokers' metadata is still there" equals "[0, 1, 2]" zk ls /brokers/ids
check "a topic created with five coordinators" \
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --create \
  --topic after-reconfig --partitions 3 --replication-factor 3
check "spec.coordinator.replicas: 5 -> 3" \
  kc patch kc demo --type=merge -p '{"spec":{"coordinator":{"replicas":3}}}'
WAIT_SECONDS=300 eventually "coordinators 4 and 5 leave: the configuration names three voters again" \
  equals "1 2 3 " config_members
WAIT_SECONDS=300 eventually "their pods go after the reconfiguration (StatefulSet at 3)" equals 3 \
  jsonpath sts demo-coordinator "$NS" '{.spec.replicas}'
WAIT_SECONDS=120 eventually "3 coordinator pods" equals 3 bash -c \
  "kubectl -n $NS get pods -l app.kubernetes.io/instance=demo,app.kubernetes.io/component=coordinator -o name | wc -l"
eventually "the ensemble is whole: one leader, two followers" equals "follower follower leader " coordinator_modes
check "still none of the first three restarted" equals "$UIDS_BEFORE" first_uids
eventually "status Ready with 3/3 coordinators" equals "True 3" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.coordinator.ready}'
eventually "the topic created meanwhile is fully in sync" in_sync after-reconfig 3 3
mark "coordinators 3 -> 5 -> 3" "$RECONFIG_STARTED"

ACKED_BEFORE=$(acked)
eventually "the producer goes on after the roll" bash -c "(( \$(acked) > $ACKED_BEFORE + 20 ))"
kill -TERM "$PRODUCER" 2>/dev/null; wait "$PRODUCER" 2>/dev/null || true
touch "$WORK/stop-producer"; wait "$HOSTS_REFRESH" 2>/dev/null || true
jq -r 'select(.name == "producer_send_success") | .value' "$WORK/producer.jsonl" | sort -u >"$WORK/acked"
echo "  ($(wc -l <"$WORK/acked") records acknowledged with acks=all through scale-up, drain, rolls, a certificate renewal and the ensemble's reconfiguration)"
kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" --topic durable \
  --from-beginning --timeout-ms 30000 2>/dev/null | sort -u >"$WORK/consumed"
check "every acknowledged record is consumed back: none lost" equals "" comm -23 "$WORK/acked" "$WORK/consumed"
# unread_by_group: acknowledged records the group's consumer has not received.
unread_by_group() {
  comm -23 "$WORK/acked" <(jq -r 'select(.name == "record_data") | .value' "$WORK/consumer.jsonl" 2>/dev/null | sort -u)
}
export -f unread_by_group
WAIT_SECONDS=120 eventually "the consumer group read every acknowledged record through scale-up, drain and rolls" \
  equals "" unread_by_group
check "(the group member was assigned the partitions and committed offsets as it read)" bash -c \
  "grep -q '\"name\":\"offsets_committed\"' $WORK/consumer.jsonl && grep -q '\"name\":\"partitions_assigned\"' $WORK/consumer.jsonl"
kill -TERM "$CONSUMER" 2>/dev/null; wait "$CONSUMER" 2>/dev/null || true

# A config that keeps the broker from starting: the first restarted pod never becomes
# Ready, and nothing else is restarted; fixing the spec restarts it again.
check "a broker config the broker refuses at start" \
  kc patch kc demo --type=merge -p '{"spec":{"brokers":{"config":{"log.segment.bytes":"many"}}}}'
WAIT_SECONDS=120 eventually "the roll waits on the broker that does not become Ready, naming it" contains "to be ready" \
  jsonpath kc demo "$NS" '{.status.operation.message}'
check "the roll restarted exactly one broker" equals 2 outdated
sleep 20
check "20 s later still only that one" equals 2 outdated
# The operator runs here with --roll-ready-timeout-seconds=45.
WAIT_SECONDS=120 eventually "past the timeout the roll stops: Degraded=True BrokerNotReady naming the broker" \
  contains "True BrokerNotReady broker" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Degraded")].status} {.status.conditions[?(@.type=="Degraded")].reason} {.status.conditions[?(@.type=="Degraded")].message}'
check "Warning Event 'BrokerNotReady'" contains BrokerNotReady bash -c \
  "kubectl -n $NS get events --field-selector type=Warning -o jsonpath='{.items[*].reason}'"
check "still only that one broker restarted" equals 2 outdated
check "fixing the spec" kc patch kc demo --type=json -p '[{"op":"remove","path":"/spec/brokers/config/log.segment.bytes"}]'
WAIT_SECONDS=420 eventually "the roll goes on and finishes: every broker on the fixed revision" equals 3 on_revision
eventually "status.operation cleared" equals "" jsonpath kc demo "$NS" '{.status.operation}'
eventually "Degraded=False again" equals False jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Degraded")].status}'
eventually "the RF=3 topic is fully in sync" in_sync events 3 3

section "storage resize"
RESIZE_STARTED=$SECONDS
broker_uids() {
  kubectl -n "$NS" get pods -l app.kubernetes.io/instance=demo,app.kubernetes.io/component=broker \
    -o jsonpath='{.items[*].metadata.uid}'
}
# broker_claim_sizes: each broker claim's "request/capacity", sorted, on one line.
broker_claim_sizes() {
  kubectl -n "$NS" get pvc -l app.kubernetes.io/instance=demo,app.kubernetes.io/component=broker -o json |
    jq -r '[.items[] | "\(.spec.resources.requests.storage)/\(.status.capacity.storage)"] | unique | join(" ")'
}
export -f broker_uids broker_claim_sizes
UIDS_BEFORE="$(broker_uids)"
check "growing spec.brokers.storage.size from 1Gi to 2Gi" \
  kc patch kc demo --type=merge -p '{"spec":{"brokers":{"storage":{"size":"2Gi"}}}}'
WAIT_SECONDS=120 eventually "every broker claim (kept ones too) asks for and has 2Gi" equals "2Gi/2Gi" broker_claim_sizes
eventually "the broker StatefulSet is re-created with a 2Gi claim template" equals 2Gi \
  jsonpath sts demo-broker "$NS" '{.spec.volumeClaimTemplates[0].spec.resources.requests.storage}'
check "Event 'ResizingStorage' recorded" contains ResizingStorage bash -c "kubectl -n $NS get events -o jsonpath='{.items[*].reason}'"
check "no broker pod was restarted for it" equals "$UIDS_BEFORE" broker_uids
eventually "the cluster is Ready, nothing left to reconcile" equals "True False" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Reconciling")].status}'
check "shrinking to 1Gi" kc patch kc demo --type=merge -p '{"spec":{"brokers":{"storage":{"size":"1Gi"}}}}'
eventually "is refused: Degraded=True StorageNotResized" contains "True StorageNotResized broker storage cannot shrink from 2Gi to 1Gi" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Degraded")].status} {.status.conditions[?(@.type=="Degraded")].reason} {.status.conditions[?(@.type=="Degraded")].message}'
check "and changes nothing" equals "2Gi/2Gi" broker_claim_sizes
check "back to 2Gi" kc patch kc demo --type=merge -p '{"spec":{"brokers":{"storage":{"size":"2Gi"}}}}'
eventually "Degraded=False again" equals False jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Degraded")].status}'
mark "storage resize of 5 broker claims" "$RESIZE_STARTED"

section "invalid specs"
check "a spec the schema allows but the operator refuses (reserved broker.id)" \
  kc patch kc demo --type=merge -p '{"spec":{"brokers":{"config":{"broker.id":"7"}}}}'
eventually "Degraded=True reason InvalidSpec" equals "True InvalidSpec" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Degraded")].status} {.status.conditions[?(@.type=="Degraded")].reason}'
check "the condition says what is wrong" contains "spec.brokers.config sets 'broker.id'" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Degraded")].message}'
check "Warning Event 'InvalidSpec'" contains InvalidSpec bash -c "kubectl -n $NS get events --field-selector type=Warning -o jsonpath='{.items[*].reason}'"
check "nothing applied from the invalid spec" bash -c "! kubectl -n $NS get cm demo-broker-config -o jsonpath='{.data.server\.properties}' | grep -q broker.id=7"
check "fixing the spec" kc patch kc demo --type=json -p '[{"op":"remove","path":"/spec/brokers/config/broker.id"}]'
eventually "Degraded=False after the fix" equals False jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Degraded")].status}'

section "operator metrics and health"
# metrics_show NEEDLE: a fresh scrape of the operator pod's /metrics contains NEEDLE.
metrics_show() { curl -sf "$(operator_url /metrics)" | grep -qF "$1"; }
export -f metrics_show
check "/healthz answers ok" equals ok curl -sf "$(operator_url /healthz)"
eventually "reconcile counter per controller" metrics_show 'strata_operator_reconciles_total{controller="kafkacluster"}'
eventually "reconcile duration histogram" metrics_show 'strata_operator_reconcile_duration_seconds_bucket{'

section "deletion"
check "deleting the KafkaCluster" kc delete kc demo --wait=false
eventually "broker and coordinator StatefulSets are deleted" bash -c "! kubectl -n $NS get sts demo-broker && ! kubectl -n $NS get sts demo-coordinator"
eventually "Services, ConfigMaps, PDBs and the brokers' ServiceAccount are deleted" bash -c \
  "! kubectl -n $NS get svc demo-broker && ! kubectl -n $NS get svc demo-coordinator && ! kubectl -n $NS get svc demo-bootstrap && ! kubectl -n $NS get cm demo-broker-config && ! kubectl -n $NS get cm demo-coordinator-config && ! kubectl -n $NS get pdb demo-broker && ! kubectl -n $NS get pdb demo-coordinator && ! kubectl -n $NS get sa demo-broker"
eventually "the brokers' ClusterRoleBinding is deleted" absent clusterrolebinding "strata-broker-$NS-demo"
eventually "the KafkaCluster itself is gone (finalizer released)" absent kc demo -n "$NS"
WAIT_SECONDS=120 eventually "every pod of the cluster is gone" equals 0 bash -c \
  "kubectl -n $NS get pods -l app.kubernetes.io/instance=demo --no-headers 2>/dev/null | wc -l"
eventually "the coordinators' super user Secret goes with it (owned by the cluster)" absent secret demo-coordinator-admin -n "$NS"
# Coordinators 4 and 5 left their claims too when the ensemble shrank back to three.
check "the data volumes are kept (10 claims: 5 brokers, 5 coordinators)" equals 10 bash -c \
  "kubectl -n $NS get pvc --no-headers | wc -l"

section "helm upgrade to a namespaced install"
check "helm upgrade --set watchNamespaces={$NS}" helm upgrade strata "$REPO/charts/strata" \
  --namespace "$OPERATOR_NS" --set image.tag=e2e --set image.pullPolicy=Never --set "watchNamespaces={$NS}"
check "a Role and RoleBinding in the watched namespace" kc get role/strata rolebinding/strata
eventually "no cluster-wide ClusterRole for the operator any more" absent clusterrole strata
# The authorizer catches up with the new Role and the removed ClusterRole binding.
eventually "the ServiceAccount may patch StatefulSets in the watched namespace" equals yes \
  can_i patch statefulsets --as "system:serviceaccount:$OPERATOR_NS:strata" -n "$NS"
eventually "the ServiceAccount may not touch StatefulSets elsewhere" equals no \
  can_i patch statefulsets --as "system:serviceaccount:$OPERATOR_NS:strata" -n default
check "the Deployment passes --namespace" contains "--namespace=$NS" \
  kubectl -n "$OPERATOR_NS" get deployment strata -o jsonpath='{.spec.template.spec.containers[0].args}'
WAIT_SECONDS=120 eventually "the operator's new pod, watching only $NS, is Ready" \
  kubectl -n "$OPERATOR_NS" rollout status deployment/strata --timeout=5s

section "helm uninstall"
check "helm uninstall removes the release" helm uninstall strata --namespace "$OPERATOR_NS"
eventually "operator Deployment removed" absent deployment strata -n "$OPERATOR_NS"
