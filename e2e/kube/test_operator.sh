# The operator as users install it: the CRDs, the chart, the operator's Deployment running
# the image in a pod with the chart's ServiceAccount, and the objects a KafkaCluster
# becomes. Sourced by run.sh (the cluster is up; lib.sh's helpers, WORK and REPO are set).

NS=strata-e2e
OPERATOR_NS=strata-system
kc() { kubectl -n "$NS" "$@"; }
# The checks below run commands in `bash -c`; hand them the functions and names they use.
export NS OPERATOR_NS
export -f kc jsonpath

section "CRDs"
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
  image: $IMAGE
  brokers:
    replicas: $2
    storage: {size: 1Gi}
    config: {num.partitions: "3"}
    rack: {topologyKey: topology.kubernetes.io/zone}
  coordinator:
    replicas: $3
    storage: {size: 512Mi}
  metrics: {enabled: true}
YAML
}
export IMAGE
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

section "Helm chart: the operator in a pod"
OPERATOR_STARTED=$SECONDS
check "helm install creates the release" helm install strata "$REPO/charts/strata" \
  --namespace "$OPERATOR_NS" --create-namespace --set image.tag=e2e --set image.pullPolicy=Never \
  --set roll.readyTimeoutSeconds=45
check "chart created the operator Deployment" kubectl -n "$OPERATOR_NS" get deployment strata
check "chart created the ServiceAccount" kubectl -n "$OPERATOR_NS" get serviceaccount strata
check "chart created the ClusterRoles and bindings" \
  kubectl get clusterrole/strata clusterrolebinding/strata clusterrole/strata-broker clusterrole/strata-racks clusterrolebinding/strata-racks
check "chart created the metrics Service" kubectl -n "$OPERATOR_NS" get service strata-metrics
# The RBAC authorizer sees new roles and bindings through its informers, a moment after
# helm created them; what is refused stays refused meanwhile.
eventually "the ServiceAccount may patch StatefulSets" equals yes \
  can_i patch statefulsets --as "system:serviceaccount:$OPERATOR_NS:strata" -n "$NS"
check "the ServiceAccount may read Secrets (a TLS listener's certificate)" equals yes \
  can_i get secrets --as "system:serviceaccount:$OPERATOR_NS:strata" -n "$NS"
check "the ServiceAccount may not change Secrets (least privilege)" equals no \
  can_i patch secrets --as "system:serviceaccount:$OPERATOR_NS:strata" -n "$NS"
check "the ServiceAccount may not list Services" equals no \
  can_i list services --as "system:serviceaccount:$OPERATOR_NS:strata" -n "$NS"
check "the ServiceAccount may bind the brokers' ClusterRole" equals yes \
  can_i bind clusterroles/strata-broker --as "system:serviceaccount:$OPERATOR_NS:strata"
check "the ServiceAccount may bind no other ClusterRole" equals no \
  can_i bind clusterroles/cluster-admin --as "system:serviceaccount:$OPERATOR_NS:strata"
check "Deployment runs 'strata-operator run' with the chart's arguments" equals \
  "run --metrics-addr=0.0.0.0:8080 --broker-cluster-role=strata-broker --roll-ready-timeout-seconds=45" \
  kubectl -n "$OPERATOR_NS" get deployment strata -o jsonpath='{.spec.template.spec.containers[0].args[*]}'
WAIT_SECONDS=180 eventually "the operator's pod is Ready (in-cluster config, the chart's RBAC)" \
  kubectl -n "$OPERATOR_NS" rollout status deployment/strata --timeout=5s
mark "operator pod ready (helm install to Ready)" "$OPERATOR_STARTED"
# /var/lib/strata belongs to uid 10001 in the image: only a read-only root stops the write.
check "the operator runs as uid 10001 with a read-only root filesystem" equals "10001 ro" bash -c \
  "kubectl -n $OPERATOR_NS exec deploy/strata -- sh -c 'echo \$(id -u) \$(touch /var/lib/strata/x 2>/dev/null && echo rw || echo ro)'"

# operator_url PATH: the operator pod's metrics endpoint, through the pod network.
operator_url() {
  local ip
  ip="$(kubectl -n "$OPERATOR_NS" get pods -l app.kubernetes.io/name=strata-operator \
    --field-selector status.phase=Running -o jsonpath='{.items[0].status.podIP}')"
  echo "http://$ip:8080$1"
}
export -f operator_url
check "/readyz answers from the operator's pod" curl -sf "$(operator_url /readyz)"

section "KafkaCluster → StatefulSets, Services, ConfigMaps, PDBs, the brokers' rack access"
CLUSTER_STARTED=$SECONDS
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
check "server.properties connects the brokers to every coordinator" contains \
  "zookeeper.connect=demo-coordinator-0.demo-coordinator.$NS.svc:2181,demo-coordinator-1.demo-coordinator.$NS.svc:2181,demo-coordinator-2.demo-coordinator.$NS.svc:2181" \
  jsonpath configmap demo-broker-config "$NS" '{.data.server\.properties}'
check "broker start script derives broker.id from the ordinal" contains 'broker.id=$ordinal' \
  jsonpath sts demo-broker "$NS" '{.spec.template.spec.containers[0].command[2]}'
check "brokers advertise their stable pod DNS name" contains "PLAINTEXT://\$POD_NAME.demo-broker.\$POD_NAMESPACE.svc:9092" \
  jsonpath sts demo-broker "$NS" '{.spec.template.spec.containers[0].command[2]}'
check "brokers look up their rack in an init container" equals rack \
  jsonpath sts demo-broker "$NS" '{.spec.template.spec.initContainers[0].name}'
check "the brokers' ServiceAccount exists for the rack lookup" kc get serviceaccount demo-broker
check "a ClusterRoleBinding gives it the chart's node-reading ClusterRole" equals "strata-broker demo-broker" \
  jsonpath clusterrolebinding "strata-broker-$NS-demo" "" '{.roleRef.name} {.subjects[0].name}'
check "PodDisruptionBudgets allow one pod down" equals "1 1" \
  bash -c "kubectl -n $NS get pdb demo-broker demo-coordinator -o jsonpath='{.items[*].spec.maxUnavailable}'"
check "objects are owned by the KafkaCluster" equals KafkaCluster jsonpath sts demo-broker "$NS" '{.metadata.ownerReferences[0].kind}'
check "objects are server-side applied by one field manager" contains strata-operator \
  bash -c "kubectl -n $NS get sts demo-broker --show-managed-fields -o jsonpath='{.metadata.managedFields[*].manager}'"
check "cleanup finalizer is on the KafkaCluster" equals strata.dev/cleanup jsonpath kc demo "$NS" '{.metadata.finalizers[0]}'
eventually "status: Ready=False WaitingForPods while the pods start" equals "False WaitingForPods" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}'
check "status: bootstrapServers" equals "demo-bootstrap.$NS.svc:9092" jsonpath kc demo "$NS" '{.status.bootstrapServers}'
check "Event 'Created' recorded" contains Created bash -c "kubectl -n $NS get events -o jsonpath='{.items[*].reason}'"
