# The checks, in the order a user meets them. Sourced by run.sh, which provides WORK,
# REPO, OPERATOR_BIN, start_operator, the ports and the helpers of lib.sh.
#
# There is no kubelet and no kube-controller-manager, so no pod ever exists. Where a test
# needs "the brokers are ready" it writes the StatefulSet's status subresource itself
# (readyReplicas etc.), which is exactly and only what the StatefulSet controller would
# write from the kubelet's pod readiness; the operator reads nothing else to decide
# readiness. The Kafka peer for Topic and ConsumerGroup is a real broker process on
# 127.0.0.1 (strata-broker or Apache Kafka, see run.sh) that the operator reaches through
# --bootstrap-override, standing in for the cluster's (never started) broker pods.

NS=strata-e2e
OPERATOR_NS=strata-system
kc() { kubectl -n "$NS" "$@"; }
# The checks below run commands in `bash -c`; hand them the functions and names they use.
export NS REPO KAFKA_PORT
export -f kc jsonpath

echo "== CRDs"
check "kubectl apply -f crds/ is accepted (structural schema, CEL rules)" kubectl apply -f "$REPO/crds/"
check "CRDs become Established" kubectl wait --for condition=Established --timeout 60s \
  crd/kafkaclusters.strata.dev crd/topics.strata.dev crd/consumergroups.strata.dev
# Discovery (the API server's and kubectl's cached copy) learns the new kinds a moment
# after they are Established.
eventually "short names kc, kt, kcg resolve" bash -c 'kubectl get kc -A && kubectl get kt -A && kubectl get kcg -A'
kubectl create namespace "$NS" >/dev/null

cluster_yaml() { # name brokers coordinators
  cat <<YAML
apiVersion: strata.dev/v1alpha1
kind: KafkaCluster
metadata: {name: $1, namespace: $NS}
spec:
  image: strata:e2e
  brokers:
    replicas: $2
    storage: {size: 1Gi}
    config: {num.partitions: "3"}
  coordinator:
    replicas: $3
    storage: {size: 512Mi}
  metrics: {enabled: true}
YAML
}
export -f cluster_yaml

check "the API server refuses an even coordinator count (CEL x-kubernetes-validations)" \
  fails_with "coordinator replicas must be odd" bash -c "cluster_yaml even 3 2 | kubectl apply -f -"
check "the API server refuses zero brokers (schema minimum)" \
  fails_with "spec.brokers.replicas: Invalid value: 0" bash -c "cluster_yaml none 0 3 | kubectl apply -f -"
check "the API server refuses resetOffsets to a timestamp without one (CEL)" fails_with "to: timestamp needs timestamp" \
  kubectl apply -f - <<YAML
apiVersion: strata.dev/v1alpha1
kind: ConsumerGroup
metadata: {name: bad-reset, namespace: $NS}
spec: {clusterRef: demo, groupId: g, resetOffsets: {to: timestamp, topics: [orders]}}
YAML

echo "== Helm chart"
check "helm install creates the release" helm install strata "$REPO/charts/strata" \
  --namespace "$OPERATOR_NS" --create-namespace --set image.tag=e2e --wait=false
check "chart created the operator Deployment" kubectl -n "$OPERATOR_NS" get deployment strata
check "chart created the ServiceAccount" kubectl -n "$OPERATOR_NS" get serviceaccount strata
check "chart created the ClusterRole and binding" kubectl get clusterrole/strata clusterrolebinding/strata
check "chart created the metrics Service" kubectl -n "$OPERATOR_NS" get service strata-metrics
# The RBAC authorizer sees new roles and bindings through its informers, a moment after
# helm created them; what is refused stays refused meanwhile.
eventually "the ServiceAccount may patch StatefulSets" equals yes \
  can_i patch statefulsets --as "system:serviceaccount:$OPERATOR_NS:strata" -n "$NS"
check "the ServiceAccount may not read Secrets (least privilege)" equals no \
  can_i get secrets --as "system:serviceaccount:$OPERATOR_NS:strata" -n "$NS"
check "the ServiceAccount may not list Services" equals no \
  can_i list services --as "system:serviceaccount:$OPERATOR_NS:strata" -n "$NS"

# No kubelet runs the Deployment's pod, so run the same binary with the Deployment's own
# arguments and the chart's ServiceAccount identity (a TokenRequest token): what the pod
# would do, held to the chart's RBAC.
service_account_kubeconfig "$OPERATOR_NS" strata "$WORK/operator.kubeconfig"
mapfile -t DEPLOYMENT_ARGS < <(kubectl -n "$OPERATOR_NS" get deployment strata \
  -o jsonpath='{range .spec.template.spec.containers[0].args[*]}{@}{"\n"}{end}')
check "Deployment runs 'strata-operator run --metrics-addr=...'" equals "run --metrics-addr=0.0.0.0:8080" echo "${DEPLOYMENT_ARGS[*]}"
OPERATOR_ARGS=()
for arg in "${DEPLOYMENT_ARGS[@]}"; do
  case "$arg" in
    --metrics-addr=*) OPERATOR_ARGS+=("--metrics-addr=127.0.0.1:$METRICS_PORT") ;;
    *) OPERATOR_ARGS+=("$arg") ;;
  esac
done
if [[ "$E2E_KAFKA" != skip ]]; then
  OPERATOR_ARGS+=("--bootstrap-override=127.0.0.1:$KAFKA_PORT")
fi
echo "== operator (as system:serviceaccount:$OPERATOR_NS:strata): ${OPERATOR_ARGS[*]}"
start_operator "$WORK/operator.kubeconfig" "${OPERATOR_ARGS[@]}"
pass "operator started and answers /readyz"

echo "== KafkaCluster → StatefulSets, Services, ConfigMaps, PDBs"
cluster_yaml demo 3 3 | kubectl apply -f - >/dev/null
eventually "broker StatefulSet demo-broker with 3 replicas" equals 3 jsonpath sts demo-broker "$NS" '{.spec.replicas}'
eventually "coordinator StatefulSet demo-coordinator with 3 replicas" equals 3 jsonpath sts demo-coordinator "$NS" '{.spec.replicas}'
check "headless Services for both roles and the bootstrap Service" kc get service demo-broker demo-coordinator demo-bootstrap
check "headless Services have clusterIP None" equals "None None" \
  bash -c "kubectl -n $NS get service demo-broker demo-coordinator -o jsonpath='{.items[*].spec.clusterIP}'"
check "ConfigMaps for both roles" kc get configmap demo-broker-config demo-coordinator-config
check "zoo.cfg lists server.1..3 by stable pod DNS name" contains \
  "server.3=demo-coordinator-2.demo-coordinator.$NS.svc:2888:3888" jsonpath configmap demo-coordinator-config "$NS" '{.data.zoo\.cfg}'
check "server.properties names the brokers' log directory" contains \
  "log.dirs=/var/lib/strata/broker" jsonpath configmap demo-broker-config "$NS" '{.data.server\.properties}'
check "broker start script derives broker.id from the ordinal" contains 'broker.id=$ordinal' \
  jsonpath sts demo-broker "$NS" '{.spec.template.spec.containers[0].command[2]}'
check "brokers advertise their stable pod DNS name" contains "PLAINTEXT://\$POD_NAME.demo-broker.\$POD_NAMESPACE.svc:9092" \
  jsonpath sts demo-broker "$NS" '{.spec.template.spec.containers[0].command[2]}'
check "PodDisruptionBudgets allow one pod down" equals "1 1" \
  bash -c "kubectl -n $NS get pdb demo-broker demo-coordinator -o jsonpath='{.items[*].spec.maxUnavailable}'"
check "objects are owned by the KafkaCluster" equals KafkaCluster jsonpath sts demo-broker "$NS" '{.metadata.ownerReferences[0].kind}'
check "objects are server-side applied by one field manager" contains strata-operator \
  bash -c "kubectl -n $NS get sts demo-broker --show-managed-fields -o jsonpath='{.metadata.managedFields[*].manager}'"
check "cleanup finalizer is on the KafkaCluster" equals strata.dev/cleanup jsonpath kc demo "$NS" '{.metadata.finalizers[0]}'
eventually "status: Ready=False WaitingForPods while no pod is ready" equals "False WaitingForPods" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}'
check "status: bootstrapServers" equals "demo-bootstrap.$NS.svc:9092" jsonpath kc demo "$NS" '{.status.bootstrapServers}'
check "Event 'Created' recorded" contains Created bash -c "kubectl -n $NS get events -o jsonpath='{.items[*].reason}'"

# Stand-in for pod readiness: what the StatefulSet controller writes once the kubelet
# reports every pod ready.
mark_ready() { # statefulset replicas
  kc patch statefulset "$1" --subresource=status --type=merge \
    -p "{\"status\":{\"replicas\":$2,\"readyReplicas\":$2,\"availableReplicas\":$2,\"currentReplicas\":$2,\"updatedReplicas\":$2}}"
}
export -f mark_ready
check "StatefulSet status written (pod readiness stand-in)" bash -c "mark_ready demo-coordinator 3 && mark_ready demo-broker 3"
eventually "status: Ready=True once every replica is ready" equals "True 3 3" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.brokers.ready} {.status.coordinator.ready}'
check "printer columns show Brokers/Ready/Coordinators" contains "demo   3         3       3" kc get kc demo

echo "== scaling"
check "kubectl scale kafkacluster/demo --replicas=5 (scale subresource)" kc scale kafkacluster/demo --replicas=5
eventually "kubectl scale moves the broker StatefulSet to 5" equals 5 jsonpath sts demo-broker "$NS" '{.spec.replicas}'
check "coordinator StatefulSet untouched by a broker scale" equals 3 jsonpath sts demo-coordinator "$NS" '{.spec.replicas}'
eventually "status: Ready=False 3/5 after scaling up" equals "False 3" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.brokers.ready}'
check "scale subresource reads the replica count" equals 5 bash -c "kubectl -n $NS get --raw /apis/strata.dev/v1alpha1/namespaces/$NS/kafkaclusters/demo/scale | jq .spec.replicas"
check "editing spec.brokers.replicas" kc patch kc demo --type=merge -p '{"spec":{"brokers":{"replicas":2}}}'
eventually "editing spec.brokers.replicas moves the StatefulSet to 2" equals 2 jsonpath sts demo-broker "$NS" '{.spec.replicas}'
eventually "Event 'Scaled' recorded" contains Scaled bash -c "kubectl -n $NS get events -o jsonpath='{.items[*].reason}'"

echo "== invalid specs"
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

if [[ "$E2E_KAFKA" != skip ]]; then
  echo "== Topic and ConsumerGroup against $E2E_KAFKA Kafka on 127.0.0.1:$KAFKA_PORT"
  kafka_class() { "$REPO/tools/kafka-class.sh" "$@"; }
  deadline=$((SECONDS + 300))
  until (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; do
    if ((SECONDS > deadline)); then echo "the Kafka peer did not start" >&2; tail -20 "$WORK/kafka.log" >&2; break; fi
    sleep 1
  done
  describe_topic() { kafka_class org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --describe --topic "$1"; }
  export -f kafka_class describe_topic
  kubectl apply -f - >/dev/null <<YAML
apiVersion: strata.dev/v1alpha1
kind: Topic
metadata: {name: orders, namespace: $NS}
spec: {clusterRef: demo, partitions: 3, replicationFactor: 1, config: {retention.ms: "3600000"}}
YAML
  eventually "Topic becomes Ready (CreateTopics)" equals "True 3" \
    jsonpath kt orders "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.partitions}'
  # The broker's metadata cache may show a new topic a moment after CreateTopics returns.
  eventually "status.topicId is the broker's topic id" bash -c "[[ -n \"\$(kubectl -n $NS get kt orders -o jsonpath='{.status.topicId}')\" ]] && describe_topic orders | grep -q \"TopicId: \$(kubectl -n $NS get kt orders -o jsonpath='{.status.topicId}')\"" 
  eventually "Kafka has the topic with 3 partitions and its config" bash -c "describe_topic orders | grep -q 'PartitionCount: 3.*retention.ms=3600000'"
  kc patch kt orders --type=merge -p '{"spec":{"partitions":5,"config":{"retention.ms":"7200000","max.message.bytes":"2000000"}}}' >/dev/null
  eventually "growing partitions reaches Kafka (CreatePartitions)" bash -c "describe_topic orders | grep -q 'PartitionCount: 5'"
  eventually "config changes reach Kafka (IncrementalAlterConfigs)" bash -c "describe_topic orders | grep 'PartitionCount' | grep 'max.message.bytes=2000000' | grep -q 'retention.ms=7200000'"
  kc patch kt orders --type=merge -p '{"spec":{"partitions":2}}' >/dev/null
  eventually "shrinking is refused with a clear condition" equals "False PartitionShrinkRefused" \
    jsonpath kt orders "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}'
  check "Kafka still has 5 partitions" bash -c "describe_topic orders | grep -q 'PartitionCount: 5'"
  kc patch kt orders --type=json -p '[{"op":"replace","path":"/spec/partitions","value":5},{"op":"remove","path":"/spec/config/max.message.bytes"}]' >/dev/null
  eventually "a config key removed from the spec is reverted in Kafka" bash -c "describe_topic orders | grep 'PartitionCount' | grep -v max.message.bytes | grep -q 'retention.ms=7200000'"
  kubectl apply -f - >/dev/null <<YAML
apiVersion: strata.dev/v1alpha1
kind: Topic
metadata: {name: lost, namespace: $NS}
spec: {clusterRef: nowhere, partitions: 1, replicationFactor: 1}
YAML
  eventually "a Topic whose cluster does not exist says so" equals ClusterNotFound \
    jsonpath kt lost "$NS" '{.status.conditions[?(@.type=="Ready")].reason}'

  # A consumer group with committed offsets: 10 records produced and consumed.
  kafka_class org.apache.kafka.tools.ProducerPerformance --topic orders --num-records 10 --record-size 20 \
    --throughput -1 --producer-props "bootstrap.servers=127.0.0.1:$KAFKA_PORT" >"$WORK/produce1.log" 2>&1
  kafka_class org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --topic orders --group billing --from-beginning --max-messages 10 --timeout-ms 60000 >"$WORK/consume.log" 2>&1 || true
  kubectl apply -f - >/dev/null <<YAML
apiVersion: strata.dev/v1alpha1
kind: ConsumerGroup
metadata: {name: billing, namespace: $NS}
spec: {clusterRef: demo, groupId: billing}
YAML
  eventually "ConsumerGroup reports state Empty, 0 members, lag 0" equals "Empty 0 0" \
    jsonpath kcg billing "$NS" '{.status.state} {.status.members} {.status.lag[0].totalLag}'
  kafka_class org.apache.kafka.tools.ProducerPerformance --topic orders --num-records 7 --record-size 20 \
    --throughput -1 --producer-props "bootstrap.servers=127.0.0.1:$KAFKA_PORT" >"$WORK/produce2.log" 2>&1
  kc annotate kcg billing strata.dev/poke=1 --overwrite >/dev/null
  eventually "lag follows new records (7)" equals 7 jsonpath kcg billing "$NS" '{.status.lag[0].totalLag}'
  kc patch kcg billing --type=merge -p '{"spec":{"resetOffsets":{"to":"earliest","topics":["orders"]}}}' >/dev/null
  eventually "resetOffsets to earliest is carried out" equals "True 17" \
    jsonpath kcg billing "$NS" '{.status.conditions[?(@.type=="OffsetsReset")].status} {.status.lag[0].totalLag}'
  check "Kafka's own tool sees the reset offsets" bash -c "kafka_class org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server 127.0.0.1:$KAFKA_PORT --describe --group billing 2>/dev/null | awk '\$2==\"orders\"{n++; sum+=\$4} END{exit !(n==5 && sum==0)}'"

  kc delete kt orders --wait=false >/dev/null
  eventually "deleting the Topic deletes the Kafka topic (DeleteTopics)" bash -c "! kafka_class org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:$KAFKA_PORT --list | grep -qx orders"
  eventually "the Topic resource is gone once Kafka deleted it" absent kt orders -n "$NS"
fi

echo "== operator metrics and health"
# metrics_show NEEDLE: a fresh scrape of /metrics contains NEEDLE.
metrics_show() { curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | grep -qF "$1"; }
check "/healthz answers ok" equals ok curl -sf "http://127.0.0.1:$METRICS_PORT/healthz"
eventually "reconcile counter per controller" metrics_show 'strata_operator_reconciles_total{controller="kafkacluster"}'
eventually "reconcile duration histogram" metrics_show 'strata_operator_reconcile_duration_seconds_bucket{'

echo "== deletion"
check "deleting the KafkaCluster" kc delete kc demo --wait=false
eventually "broker and coordinator StatefulSets are deleted" bash -c "! kubectl -n $NS get sts demo-broker && ! kubectl -n $NS get sts demo-coordinator"
eventually "Services, ConfigMaps and PDBs are deleted" bash -c "! kubectl -n $NS get svc demo-broker && ! kubectl -n $NS get svc demo-coordinator && ! kubectl -n $NS get svc demo-bootstrap && ! kubectl -n $NS get cm demo-broker-config && ! kubectl -n $NS get cm demo-coordinator-config && ! kubectl -n $NS get pdb demo-broker && ! kubectl -n $NS get pdb demo-coordinator"
eventually "the KafkaCluster itself is gone (finalizer released)" absent kc demo -n "$NS"

echo "== helm upgrade to a namespaced install"
check "helm upgrade --set watchNamespaces={$NS}" helm upgrade strata "$REPO/charts/strata" \
  --namespace "$OPERATOR_NS" --set image.tag=e2e --set "watchNamespaces={$NS}"
check "a Role and RoleBinding in the watched namespace" kc get role/strata rolebinding/strata
eventually "no ClusterRole any more" absent clusterrole strata
# The authorizer catches up with the new Role and the removed ClusterRole binding.
eventually "the ServiceAccount may patch StatefulSets in the watched namespace" equals yes \
  can_i patch statefulsets --as "system:serviceaccount:$OPERATOR_NS:strata" -n "$NS"
eventually "the ServiceAccount may not touch StatefulSets elsewhere" equals no \
  can_i patch statefulsets --as "system:serviceaccount:$OPERATOR_NS:strata" -n default
check "the Deployment passes --namespace" contains "--namespace=$NS" \
  kubectl -n "$OPERATOR_NS" get deployment strata -o jsonpath='{.spec.template.spec.containers[0].args}'

echo "== helm uninstall"
check "helm uninstall removes the release" helm uninstall strata --namespace "$OPERATOR_NS"
eventually "operator Deployment removed" absent deployment strata -n "$OPERATOR_NS"
