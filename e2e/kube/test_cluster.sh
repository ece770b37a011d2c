# The pods a KafkaCluster becomes start and form one cluster: every coordinator in one
# quorum, every broker registered in it with its node's zone as rack, and a Topic with
# replication factor 3 fully in sync, as Kafka's own tools see it from the host. Sourced
# by run.sh after test_operator.sh (cluster demo in $NS was just applied).

BOOTSTRAP="demo-bootstrap.$NS.svc:9092"
export BOOTSTRAP

# ready_pods COMPONENT: how many of the cluster's pods of that role are Ready.
ready_pods() {
  kubectl -n "$NS" get pods -l "app.kubernetes.io/instance=demo,app.kubernetes.io/component=$1" \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True
}
# zk ARGS...: `strata zk` in a coordinator pod, against that coordinator.
zk() { kubectl -n "$NS" exec demo-coordinator-0 -- strata zk --server 127.0.0.1:2181 "$@"; }
# coordinator_modes: each coordinator's own answer to the readiness probe, sorted.
coordinator_modes() {
  local i
  for i in 0 1 2; do
    kubectl -n "$NS" exec "demo-coordinator-$i" -- strata-operator probe coordinator | awk '{print $2}'
  done | sort | tr '\n' ' '
}
describe_topic() {
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --describe --topic "$1"
}
# in_sync TOPIC PARTITIONS RF: kafka-topics --describe shows every partition with RF
# distinct replicas, a leader among them and all of them in the ISR.
in_sync() {
  describe_topic "$1" | awk -v want="$2" -v rf="$3" '
    /Partition:/ {
      for (i = 1; i <= NF; i++) {
        if ($i == "Leader:") leader = $(i + 1)
        if ($i == "Replicas:") replicas = $(i + 1)
        if ($i == "Isr:") isr = $(i + 1)
      }
      n = split(replicas, r, ","); m = split(isr, s, ",")
      if (n != rf || m != rf) { print "partition " $0 " is not fully replicated"; bad = 1 }
      delete seen; for (j = 1; j <= n; j++) seen[r[j]] = 1
      if (length(seen) != rf) { print "duplicate replicas: " $0; bad = 1 }
      for (j = 1; j <= m; j++) if (!(s[j] in seen)) { print "ISR outside the replicas: " $0; bad = 1 }
      if (!(leader in seen)) { print "leader outside the replicas: " $0; bad = 1 }
      count++
    }
    END { if (count != want) { print count " partitions, expected " want; bad = 1 }; exit bad }'
}
export -f ready_pods zk coordinator_modes describe_topic in_sync

section "pods: one quorum, one Kafka cluster"
WAIT_SECONDS=300 eventually "3 coordinator pods Ready (each in the quorum)" equals 3 ready_pods coordinator
WAIT_SECONDS=300 eventually "3 broker pods Ready (each described by the controller)" equals 3 ready_pods broker
mark "pods ready (KafkaCluster applied to 6 pods Ready)" "$CLUSTER_STARTED"
echo "   restarts: $(kubectl -n "$NS" get pods -o jsonpath='{range .items[*]}{.metadata.name}={.status.containerStatuses[0].restartCount} {end}')"
eventually "status: Ready=True with 3/3 brokers and 3/3 coordinators" equals "True 3 3" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.brokers.ready} {.status.coordinator.ready}'
check "the ensemble has one leader and two followers" equals "follower follower leader " coordinator_modes
eventually "status names the leader the ensemble elected (srvr asked from the operator's pod)" bash -c \
  "leader=\$(kubectl -n $NS get kc demo -o jsonpath='{.status.coordinator.leader}') && [[ -n \$leader ]] && kubectl -n $NS exec \$leader -- strata-operator probe coordinator | grep -qx 'ready: leader'"
eventually "3 brokers registered in the coordinator (/brokers/ids)" equals "[0, 1, 2]" zk ls /brokers/ids
for i in 0 1 2; do
  check "broker $i registered with its pod's name and its node's zone as rack" bash -c \
    "zk get /brokers/ids/$i | grep -F '\"rack\":\"$NODE_ZONE\"' | grep -qF 'demo-broker-$i.demo-broker.$NS.svc'"
done
check "every broker reads its rack from its node (init container)" equals "node $NODE_NAME: topology.kubernetes.io/zone=$NODE_ZONE" \
  kubectl -n "$NS" logs demo-broker-1 -c rack
eventually "the brokers' metadata lists all three with their racks (kafka-broker-api-versions)" equals 3 bash -c \
  "kafka_tool org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server $BOOTSTRAP | grep -cE '^demo-broker-[0-2]\\.demo-broker\\.$NS\\.svc:9092 \\(id: [0-2] rack: $NODE_ZONE[ )]'"
check "a broker's root filesystem is read-only; its config is rendered in /run/strata" bash -c \
  "kubectl -n $NS exec demo-broker-0 -- sh -c '! touch /var/x 2>/dev/null && grep -qx broker.id=0 /run/strata/server.properties && grep -qx broker.rack=$NODE_ZONE /run/strata/server.properties'"
check "brokers have no API credentials (only their init container has)" bash -c \
  "kubectl -n $NS exec demo-broker-0 -- sh -c '! ls /var/run/secrets/kubernetes.io/serviceaccount 2>/dev/null'"

section "a Topic with replication factor 3, in sync"
kubectl apply -f - >/dev/null <<YAML
apiVersion: strata.dev/v1alpha1
kind: Topic
metadata: {name: events, namespace: $NS}
spec: {clusterRef: demo, partitions: 3, replicationFactor: 3, config: {min.insync.replicas: "2"}}
YAML
eventually "Topic events becomes Ready (CreateTopics on the cluster's brokers)" equals "True 3" \
  jsonpath kt events "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.partitions}'
eventually "kafka-topics --describe: 3 partitions, 3 replicas each, all in the ISR" in_sync events 3 3
check "kafka-topics --describe agrees with the Topic's status on the topic id" bash -c \
  "describe_topic events | grep -q \"TopicId: \$(kubectl -n $NS get kt events -o jsonpath='{.status.topicId}')\""
check "kafka-topics --describe shows the Topic's config" bash -c "describe_topic events | grep -q 'min.insync.replicas=2'"
check "kafka-topics --under-replicated-partitions lists none" equals "" \
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --describe --under-replicated-partitions --topic events
check "500 records produced with acks=all" contains "500 records sent" \
  kafka_tool org.apache.kafka.tools.ProducerPerformance --topic events --num-records 500 --record-size 100 \
  --throughput -1 --producer-props "bootstrap.servers=$BOOTSTRAP" acks=all
check "and consumed back from the three leaders" equals 500 bash -c \
  "kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server $BOOTSTRAP --topic events \
     --from-beginning --max-messages 500 --timeout-ms 60000 2>/dev/null | wc -l"

section "members that restart"
# pod_field POD JSONPATH: one field of a pod.
pod_field() { kubectl -n "$NS" get pod "$1" -o "jsonpath=$2"; }
# replaced POD UID: the pod is a new one (not UID) and Ready.
replaced() {
  [[ "$(pod_field "$1" '{.metadata.uid}')" != "$2" ]] &&
    [[ "$(pod_field "$1" '{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}
export -f pod_field replaced
LEADER="$(jsonpath kc demo "$NS" '{.status.coordinator.leader}')"
LEADER_IP="$(pod_field "$LEADER" '{.status.podIP}')"
OLD_UID="$(pod_field "$LEADER" '{.metadata.uid}')"
RESTART_STARTED=$SECONDS
check "deleting the leader's pod ($LEADER)" kc delete pod "$LEADER" --wait=false
WAIT_SECONDS=180 eventually "$LEADER comes back and is Ready (in the quorum)" replaced "$LEADER" "$OLD_UID"
eventually "the ensemble is whole again: one leader, two followers" equals "follower follower leader " coordinator_modes
mark "coordinator leader deleted to quorum whole again" "$RESTART_STARTED"
echo "   $LEADER: $LEADER_IP before, $(pod_field "$LEADER" '{.status.podIP}') after"
eventually "the brokers kept their registrations" equals "[0, 1, 2]" zk ls /brokers/ids
OLD_UID="$(pod_field demo-broker-2 '{.metadata.uid}')"
RESTART_STARTED=$SECONDS
check "deleting broker pod demo-broker-2" kc delete pod demo-broker-2 --wait=false
WAIT_SECONDS=180 eventually "demo-broker-2 comes back and is Ready (described by the controller)" \
  replaced demo-broker-2 "$OLD_UID"
eventually "its replicas rejoin the ISR: every partition of the RF=3 topic in sync" in_sync events 3 3
mark "broker deleted to back in every ISR" "$RESTART_STARTED"
