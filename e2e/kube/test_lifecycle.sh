# Day-2 on real pods: scaling through the scale subresource, a spec the operator refuses,
# the operator's own metrics, deleting the cluster, and moving the install to a namespaced
# one. Sourced by run.sh after test_topics.sh.

section "scaling"
SCALE_STARTED=$SECONDS
check "kubectl scale kafkacluster/demo --replicas=5 (scale subresource)" kc scale kafkacluster/demo --replicas=5
eventually "kubectl scale moves the broker StatefulSet to 5" equals 5 jsonpath sts demo-broker "$NS" '{.spec.replicas}'
check "coordinator StatefulSet untouched by a broker scale" equals 3 jsonpath sts demo-coordinator "$NS" '{.spec.replicas}'
check "scale subresource reads the replica count" equals 5 bash -c \
  "kubectl -n $NS get --raw /apis/strata.dev/v1alpha1/namespaces/$NS/kafkaclusters/demo/scale | jq .spec.replicas"
WAIT_SECONDS=240 eventually "5 broker pods Ready" equals 5 ready_pods broker
eventually "5 brokers registered in the same cluster" equals "[0, 1, 2, 3, 4]" zk ls /brokers/ids
eventually "status: Ready=True with 5/5 brokers" equals "True 5" \
  jsonpath kc demo "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.brokers.ready}'
mark "scale 3 to 5 brokers (pods Ready, registered)" "$SCALE_STARTED"
eventually "Event 'Scaled' recorded" contains Scaled bash -c "kubectl -n $NS get events -o jsonpath='{.items[*].reason}'"
# Back to 3 by editing the spec. Nothing lives only on brokers 3 and 4 (every topic was
# created while there were three); draining before a scale-down is not the operator's
# job yet.
check "editing spec.brokers.replicas" kc patch kc demo --type=merge -p '{"spec":{"brokers":{"replicas":3}}}'
eventually "editing spec.brokers.replicas moves the StatefulSet to 3" equals 3 jsonpath sts demo-broker "$NS" '{.spec.replicas}'
WAIT_SECONDS=120 eventually "brokers 3 and 4 leave the cluster with their pods" equals "[0, 1, 2]" zk ls /brokers/ids
eventually "the RF=3 topic is still fully in sync" in_sync events 3 3

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
check "the data volumes are kept (8 claims: 5 brokers, 3 coordinators)" equals 8 bash -c \
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
