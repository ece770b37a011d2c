# The chart on its own: lint, and the objects `helm template` renders for the default
# values and for a namespaced install. Sourced by run.sh (needs only helm).

CHART="$REPO/charts/strata"
section "helm lint / helm template"
check "helm lint is clean" helm lint --strict "$CHART"
check "chart CRDs are the generated ones" diff -r "$REPO/crds" "$CHART/crds"
check "chart dashboards are the ones in dashboards/" diff -r "$REPO/dashboards" "$CHART/dashboards"

render() { helm template strata "$CHART" --namespace strata-system "$@"; }
kinds() { render "$@" | awk '/^kind:/{print $2}' | sort | tr '\n' ' '; }
export CHART
export -f render kinds

# names KIND ARGS...: the names of the rendered objects of one kind.
names() {
  local kind="$1"; shift
  render "$@" | awk -v kind="$kind" '/^kind:/{k=$2} /^  name:/ && k==kind {print $2; k=""}' | sort | tr '\n' ' '
}
export -f names
check "default render: SA, ClusterRoles+bindings, Service, Deployment" equals \
  "ClusterRole ClusterRole ClusterRole ClusterRoleBinding ClusterRoleBinding Deployment Service ServiceAccount " kinds
check "watchNamespaces renders a Role+RoleBinding per namespace" equals \
  "ClusterRole ClusterRole ClusterRoleBinding Deployment Role Role RoleBinding RoleBinding Service ServiceAccount " \
  kinds --set 'watchNamespaces={team-a,team-b}'
check "a namespaced install's only cluster-wide roles are the rack ones" equals "strata-broker strata-racks " \
  names ClusterRole --set 'watchNamespaces={team-a,team-b}'
# rules_of KIND NAME: the rules of one rendered role, whitespace removed.
rules_of() {
  render | awk -v kind="$1" -v name="$2" 'BEGIN{RS="---"} $0 ~ "kind: " kind "\n" && $0 ~ "\n  name: " name "\n"' |
    sed -n '/^rules:/,$p' | tr -d ' \n'
}
export -f rules_of
check "the brokers' ClusterRole reads nodes and nothing else" equals \
  'rules:-apiGroups:[""]resources:["nodes"]verbs:["get"]' rules_of ClusterRole strata-broker
check "the operator may bind only the brokers' ClusterRole" bash -c \
  "render | grep -A2 'verbs: \[\"bind\"\]' | grep -q 'resourceNames: \[\"strata-broker\"\]'"
check "the Deployment names the brokers' ClusterRole" contains "- --broker-cluster-role=strata-broker" render
check "watchNamespaces become --namespace arguments" contains "- --namespace=team-b" \
  render --set 'watchNamespaces={team-a,team-b}'
check "serviceMonitor.enabled adds a ServiceMonitor" contains "kind: ServiceMonitor" render --set serviceMonitor.enabled=true
check "dashboards.enabled packages the dashboard and alert rules" bash -c \
  "render --set dashboards.enabled=true | grep -q 'strata-operator.json:' && render --set dashboards.enabled=true | grep -q 'strata.rules.yaml:'"
check "image values reach the Deployment" contains "image: registry.example/strata:1.2.3" \
  render --set image.repository=registry.example/strata --set image.tag=1.2.3
check "resources values reach the Deployment" contains "cpu: 250m" render --set resources.requests.cpu=250m
check "the operator runs as non-root with a read-only root filesystem" bash -c \
  "render | grep -q 'runAsNonRoot: true' && render | grep -q 'readOnlyRootFilesystem: true'"
check "RBAC grants no wildcard" bash -c "! render | grep -Eq '\"\\*\"'"
# A TLS listener's Secret is read (its certificate's digest rolls the brokers), never
# written; the one Secret the operator creates is the coordinators' super user.
check "RBAC reads and creates Secrets, and nothing more (get, list, watch, create)" bash -c \
  "render | grep -A1 'resources: \\[\"secrets\"\\]' | grep -qF 'verbs: [\"get\", \"list\", \"watch\", \"create\"]'"
