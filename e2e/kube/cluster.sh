#!/usr/bin/env bash
# A single-node Kubernetes that runs pods, on this machine, from what e2e/kube/setup.sh
# built and installed:
#
#   containerd + runc      the container runtime (Debian), images imported from archives;
#   CNI bridge cni0        pods on 10.244.0.0/24, the host is their gateway 10.244.0.1;
#   etcd, kube-apiserver   the API on https://10.244.0.1:26443 (also what pods reach
#                          through the kubernetes Service 10.96.0.1:443);
#   kube-controller-manager, kube-scheduler, kubelet, kube-proxy (iptables);
#   CoreDNS                on 10.244.0.1:53, the pods' cluster DNS (cluster.local);
#   local volumes          StorageClass "local" (the default): a provisioner that makes a
#                          directory per claim and a `local` PersistentVolume for it, and
#                          grows both when the claim asks for more (volume expansion).
#
#   bash e2e/kube/cluster.sh up      # prints `export KUBECONFIG=...`
#   bash e2e/kube/cluster.sh down    # stops everything, cleans the host, removes the state
#
# run.sh sources this file and calls cluster_up / cluster_down itself. Everything it
# starts is recorded (PIDs, mounts, network namespaces, host directories it had to
# create, sysctls the kubelet and kube-proxy change) and cluster_down undoes exactly
# that, also after a failure half-way. One such cluster per machine: it owns cni0,
# 10.244.0.0/24 and the ports below.

STRATA_CACHE="${STRATA_CACHE:-/root/.cache/strata}"
K8S_BIN="$STRATA_CACHE/k8s/bin"
NODE_DIR="$STRATA_CACHE/e2e/node"
NODE_RUN="$NODE_DIR/run"
NODE_NAME="${NODE_NAME:-strata-e2e}"
NODE_ZONE="${NODE_ZONE:-e2e-zone-a}"
POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
ETCD_PORT="${ETCD_PORT:-22379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-22380}"
APISERVER_PORT="${APISERVER_PORT:-26443}"
# The node components' own ports, away from their defaults (1025x) so a developer's
# cluster on the same machine does not collide with them.
KUBELET_PORT=20250 KUBELET_HEALTHZ_PORT=20248 KCM_PORT=20257 SCHEDULER_PORT=20259
PROXY_METRICS_PORT=20249 PROXY_HEALTHZ_PORT=20256 COREDNS_HEALTH_PORT=28180 COREDNS_READY_PORT=28181
CONTAINERD_ADDRESS="$NODE_RUN/containerd/containerd.sock"
# Sysctls the kubelet (protectKernelDefaults: false) and kube-proxy set; restored on down.
NODE_SYSCTLS=(kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes
  vm.overcommit_memory vm.panic_on_oom net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables
  net.ipv4.conf.all.route_localnet)
# Paths the kubelet, containerd and the CNI library use whatever they are told
# (device-plugin sockets, /var/log/containers links, shim sockets, the CNI result cache).
# /run/netns is not among them: other tests on the machine make network namespaces too.
NODE_HOST_DIRS=(/var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /var/lib/cni
  /usr/libexec/kubernetes /opt/containerd)

# ctr against this cluster's containerd, in the namespace the kubelet's pods live in.
node_ctr() { ctr --address "$CONTAINERD_ADDRESS" --namespace k8s.io "$@"; }

node_log() { echo "[$(date +%T)] $*" >&2; }

# node_start NAME COMMAND...: in the background, in its own session (so it can be
# stopped with everything it forked), logging to logs/NAME.log, its PID in pids/NAME.
node_start() {
  local name="$1"; shift
  setsid "$@" >"$NODE_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$NODE_DIR/pids/$name"
}

# node_wait WHAT SECONDS COMMAND...: until COMMAND succeeds; on timeout, say which log to read.
node_wait() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      node_log "timed out after ${seconds}s waiting for $what (logs in $NODE_DIR/logs)"
      return 1
    fi
    sleep 0.5
  done
}

# node_stop NAME...: TERM to the process groups started by node_start, all at once, then
# KILL to whatever still runs 15 s later.
node_stop() {
  local name pid pids=()
  for name in "$@"; do
    [[ -f "$NODE_DIR/pids/$name" ]] || continue
    pid="$(cat "$NODE_DIR/pids/$name")"
    rm -f "$NODE_DIR/pids/$name"
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    pids+=("$pid")
  done
  local deadline=$((SECONDS + 15))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
}

node_pki() {
  local pki="$NODE_DIR/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=strata-e2e-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:%s,IP:%s,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' \
      "$NODE_IP" "$KUBERNETES_SERVICE_IP" >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    # The API server's client identity towards the kubelet (logs, exec, port-forward).
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
      -keyout kubelet-client.key -out kubelet-client.csr 2>/dev/null
    openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -out kubelet-client.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
    # token,user,uid,"groups": static tokens for the admin and each component.
    {
      echo "$(token),e2e-admin,e2e-admin,system:masters"
      echo "$(token),system:kube-controller-manager,kcm"
      echo "$(token),system:kube-scheduler,scheduler"
      echo "$(token),system:node:$NODE_NAME,kubelet,system:nodes"
      echo "$(token),system:kube-proxy,kube-proxy"
      echo "$(token),strata-e2e:coredns,coredns"
      echo "$(token),strata-e2e:local-provisioner,local-provisioner"
    } >tokens.csv
  )
}

# node_kubeconfig USER FILE: a kubeconfig that authenticates as USER with its static token.
node_kubeconfig() {
  local token
  token="$(awk -F, -v user="$1" '$2 == user {print $1}' "$NODE_DIR/pki/tokens.csv")"
  cat >"$2" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority: $NODE_DIR/pki/ca.crt
users:
- name: user
  user:
    token: $token
contexts:
- name: e2e
  context: {cluster: e2e, user: user, namespace: default}
current-context: e2e
KUBECONFIG
  chmod 600 "$2"
}

node_network() {
  if ! ip link show cni0 >/dev/null 2>&1; then
    ip link add cni0 type bridge
    echo cni0 >>"$NODE_DIR/created-links"
  fi
  ip addr replace "$NODE_IP/24" dev cni0
  ip link set cni0 up
  mkdir -p "$NODE_DIR/cni"
  cat >"$NODE_DIR/cni/10-strata-e2e.conflist" <<CNI
{
  "cniVersion": "0.4.0",
  "name": "strata-e2e",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$NODE_DIR/cni-ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
CNI
}

node_containerd() {
  mkdir -p "$NODE_DIR/containerd" "$NODE_RUN"
  cat >"$NODE_DIR/containerd/config.toml" <<TOML
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_RUN/containerd"
[grpc]
  address = "$CONTAINERD_ADDRESS"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  # The machine gives no process CAP_SYS_RESOURCE, so runc cannot set the negative
  # oom_score_adj the kubelet asks for (pause -998, Guaranteed pods -997) and every
  # container fails with "can't get final child's PID from pipe: EOF". Clamp the value
  # to containerd's own instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$NODE_RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni"
TOML
  node_start containerd containerd --config "$NODE_DIR/containerd/config.toml"
  node_wait containerd 60 node_ctr version
}

node_control_plane() {
  node_start etcd "$K8S_BIN/etcd" --name e2e --data-dir "$NODE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync
  # On the bridge address only: the host reaches it there, and so do pods, through the
  # kubernetes Service that kube-proxy maps to this advertised address.
  node_start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$NODE_DIR/pki/apiserver.crt" --tls-private-key-file "$NODE_DIR/pki/apiserver.key" \
    --client-ca-file "$NODE_DIR/pki/ca.crt" --token-auth-file "$NODE_DIR/pki/tokens.csv" \
    --kubelet-client-certificate "$NODE_DIR/pki/kubelet-client.crt" \
    --kubelet-client-key "$NODE_DIR/pki/kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$NODE_DIR/pki/sa.pub" \
    --service-account-signing-key-file "$NODE_DIR/pki/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --enable-priority-and-fairness=false
  node_wait kube-apiserver 180 kubectl get --raw /readyz
  # The API server creates the default namespace and the bootstrap RBAC itself.
  node_wait "the default namespace" 60 kubectl get namespace default

  node_start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$NODE_DIR/kcm.kubeconfig" \
    --authentication-kubeconfig "$NODE_DIR/kcm.kubeconfig" \
    --authorization-kubeconfig "$NODE_DIR/kcm.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
    --use-service-account-credentials \
    --service-account-private-key-file "$NODE_DIR/pki/sa.key" --root-ca-file "$NODE_DIR/pki/ca.crt" \
    --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false \
    --flex-volume-plugin-dir "$NODE_DIR/flexvolume"
  node_start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$NODE_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$NODE_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig "$NODE_DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false
}

node_kubelet() {
  mkdir -p "$NODE_DIR/kubelet"
  cat >"$NODE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
readOnlyPort: 0
containerRuntimeEndpoint: unix://$CONTAINERD_ADDRESS
# This machine has cgroup v1 and no systemd.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
podCIDR: $POD_CIDR
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: /etc/resolv.conf
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $NODE_DIR/pki/ca.crt}
authorization: {mode: Webhook}
# Images come from archives, never from a registry: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
podLogsDir: $NODE_DIR/pod-logs
volumePluginDir: $NODE_DIR/kubelet-plugins
registerNode: true
YAML
  node_start kubelet "$K8S_BIN/kubelet" --config "$NODE_DIR/kubelet.yaml" \
    --kubeconfig "$NODE_DIR/kubelet.kubeconfig" --root-dir "$NODE_DIR/kubelet" \
    --cert-dir "$NODE_DIR/kubelet/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "topology.kubernetes.io/zone=$NODE_ZONE" --v 1
}

node_proxy() {
  cat >"$NODE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NODE_DIR/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
nodePortAddresses: [$NODE_IP/32]
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
# No route_localnet, no conntrack table resizing: leave the host's settings alone.
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  node_start kube-proxy "$K8S_BIN/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml"
}

# node_grant USER < RULES: a ClusterRole with the rules (YAML list) on stdin, bound to the
# user a component authenticates as.
node_grant() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "$1"}
rules:
$(cat)
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "$1"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "$1"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "$1"}]
YAML
}

node_dns() {
  node_grant strata-e2e:coredns <<YAML
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
YAML
  cat >"$NODE_DIR/Corefile" <<COREFILE
.:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:$COREDNS_HEALTH_PORT
    ready 127.0.0.1:$COREDNS_READY_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $NODE_DIR/coredns.kubeconfig e2e
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    forward . /etc/resolv.conf
    cache 5
    loadbalance
}
COREFILE
  node_start coredns "$K8S_BIN/coredns" -conf "$NODE_DIR/Corefile"
}

node_storage() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: strata.dev/local-directory
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
YAML
  node_grant strata-e2e:local-provisioner <<YAML
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [list, get]
- apiGroups: [""]
  resources: [persistentvolumeclaims/status]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [list, get, create, delete, patch]
YAML
  KUBECONFIG="$NODE_DIR/local-provisioner.kubeconfig" node_start local-provisioner \
    bash "$(dirname "${BASH_SOURCE[0]}")/local-provisioner.sh" "$NODE_DIR/volumes" "$NODE_NAME"
}

# cluster_up: everything above, in dependency order; returns once the node is Ready, DNS
# answers and pods can be given ServiceAccount tokens.
cluster_up() {
  local started=$SECONDS
  for tool in containerd ctr runc iptables ip /usr/lib/cni/bridge; do
    command -v "$tool" >/dev/null || { node_log "$tool missing: run bash e2e/kube/setup.sh"; return 1; }
  done
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns; do
    [[ -x "$K8S_BIN/$b" ]] || { node_log "$K8S_BIN/$b missing: run bash e2e/kube/setup.sh"; return 1; }
  done
  if [[ -d "$NODE_DIR/pids" ]]; then
    local f
    for f in "$NODE_DIR"/pids/*; do
      if [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null; then
        node_log "a cluster is up ($(basename "$f") runs as pid $(cat "$f")); one per machine: bash e2e/kube/cluster.sh down"
        return 1
      fi
    done
    node_log "cleaning up what an earlier run left behind"
    cluster_down
  fi
  if ip link show cni0 >/dev/null 2>&1; then
    node_log "cni0 exists and is not ours; is another Kubernetes running on this machine?"
    return 1
  fi
  local port
  for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT" "$KCM_PORT" \
    "$SCHEDULER_PORT" "$PROXY_METRICS_PORT" "$PROXY_HEALTHZ_PORT" "$COREDNS_HEALTH_PORT" "$COREDNS_READY_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      node_log "127.0.0.1:$port is in use; is another cluster running?"
      return 1
    fi
  done
  export PATH="$K8S_BIN:$PATH"
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR/logs" "$NODE_DIR/pids"

  # What exists before we start is left alone by cluster_down.
  for d in "${NODE_HOST_DIRS[@]}"; do [[ -e "$d" ]] || echo "$d"; done >"$NODE_DIR/created-host-dirs"
  ls /run/netns 2>/dev/null | sort >"$NODE_DIR/netns-before" || true
  for s in "${NODE_SYSCTLS[@]}"; do
    echo "$s=$(sysctl -n "$s" 2>/dev/null)"
  done >"$NODE_DIR/sysctls-before"
  # Pod traffic crosses cni0 and must pass kube-proxy's iptables rules on the way.
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 || {
    node_log "cannot enable forwarding and bridge netfilter (is br_netfilter loaded?)"
    return 1
  }

  node_pki
  node_kubeconfig e2e-admin "$NODE_DIR/admin.kubeconfig"
  node_kubeconfig system:kube-controller-manager "$NODE_DIR/kcm.kubeconfig"
  node_kubeconfig system:kube-scheduler "$NODE_DIR/scheduler.kubeconfig"
  node_kubeconfig "system:node:$NODE_NAME" "$NODE_DIR/kubelet.kubeconfig"
  node_kubeconfig system:kube-proxy "$NODE_DIR/kube-proxy.kubeconfig"
  node_kubeconfig strata-e2e:coredns "$NODE_DIR/coredns.kubeconfig"
  node_kubeconfig strata-e2e:local-provisioner "$NODE_DIR/local-provisioner.kubeconfig"
  export KUBECONFIG="$NODE_DIR/admin.kubeconfig"

  node_network
  node_containerd || return 1
  local image
  for image in "$STRATA_CACHE"/k8s/images/*.oci.tar; do
    node_ctr images import "$image" >/dev/null || return 1
  done
  node_control_plane || return 1
  node_kubelet
  node_proxy
  node_dns
  node_storage
  node_wait "node $NODE_NAME Ready" 120 bash -c \
    "kubectl get node $NODE_NAME -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True" || return 1
  node_wait "the default ServiceAccount" 60 kubectl get serviceaccount default || return 1
  node_wait "CoreDNS" 60 curl -sf "http://127.0.0.1:$COREDNS_READY_PORT/ready" || return 1
  node_log "cluster up in $((SECONDS - started)) s: export KUBECONFIG=$KUBECONFIG"
}

# cluster_down: stops and removes everything cluster_up made. Safe to run more than once
# and after a partial cluster_up; every step runs whatever the previous one returned
# (a subshell without errexit, also when the caller has `set -e`).
cluster_down() {
  [[ -d "$NODE_DIR" ]] || return 0
  (set +e; node_down)
}

node_down() {
  local started=$SECONDS
  export PATH="$K8S_BIN:$PATH"
  export KUBECONFIG="$NODE_DIR/admin.kubeconfig"
  # Nothing may recreate pods while they go: controllers and the scheduler first.
  node_stop local-provisioner kube-controller-manager kube-scheduler
  # Let the kubelet stop every pod the regular way (CNI DEL, volumes unmounted).
  if [[ -f "$NODE_DIR/pids/kubelet" ]] && kubectl get --raw /readyz >/dev/null 2>&1; then
    kubectl delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1
    local deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)) && [[ -n "$(node_ctr tasks ls -q 2>/dev/null)" ]]; do sleep 1; done
  fi
  node_stop kubelet kube-proxy coredns
  node_stop kube-apiserver
  node_stop etcd

  # Whatever is still running in a container: kill it, then containerd and its shims.
  local shims
  shims="$(cat "$NODE_RUN"/containerd/io.containerd.runtime.v2.task/k8s.io/*/shim.pid 2>/dev/null)"
  if [[ -f "$NODE_DIR/pids/containerd" ]]; then
    local task
    for task in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks kill -s SIGKILL "$task" >/dev/null 2>&1; done
    sleep 1
    for task in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks delete -f "$task" >/dev/null 2>&1; done
  fi
  node_stop containerd
  local pid
  for pid in $shims; do kill -KILL "$pid" 2>/dev/null; done
  # A shim whose task directory was already gone (a sandbox mid-teardown, a run stopped
  # by a signal) is found by the socket it serves, with whatever still runs under it.
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $NODE_RUN/containerd/containerd.sock"); do
    pkill -KILL -P "$pid" 2>/dev/null
    kill -KILL "$pid" 2>/dev/null
  done

  # Mounts under the state directory (rootfs overlays, volumes, tokens), deepest first;
  # then network namespaces the CNI made during this run.
  local m
  for m in $(findmnt -rn -o TARGET | grep -F "$NODE_DIR/" | sort -r); do umount -l "$m" 2>/dev/null; done
  for m in /run/netns/cni-*; do
    [[ -e "$m" ]] || continue
    grep -qxF "$(basename "$m")" "$NODE_DIR/netns-before" 2>/dev/null && continue
    umount "$m" 2>/dev/null
    rm -f "$m"
  done

  # Network: the bridge and every iptables rule the kubelet, kube-proxy and the CNI
  # plugins added (their chains are named KUBE-* and CNI-*; other chains are not ours).
  if grep -qx cni0 "$NODE_DIR/created-links" 2>/dev/null; then ip link del cni0 2>/dev/null; fi
  "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1
  node_iptables_clean

  # Kubelet's cgroups (kubepods*), host paths that did not exist before, sysctls.
  local d
  for d in /sys/fs/cgroup/*/kubepods*; do
    [[ -d "$d" ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  for m in $(findmnt -rn -o TARGET | grep -E '^/(var/lib/kubelet|run/containerd)/' | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  if [[ -f "$NODE_DIR/created-host-dirs" ]]; then
    while read -r d; do
      [[ -n "$d" ]] || continue
      mountpoint -q "$d" && umount -l "$d" 2>/dev/null
      rm -rf "$d"
    done <"$NODE_DIR/created-host-dirs"
  fi
  if [[ -f "$NODE_DIR/sysctls-before" ]]; then
    local s v
    while IFS='=' read -r s v; do [[ -n "$v" ]] && sysctl -qw "$s=$v" 2>/dev/null; done <"$NODE_DIR/sysctls-before"
  fi

  if [[ -n "${E2E_KEEP:-}" ]]; then
    node_log "cluster down in $((SECONDS - started)) s; state and logs kept in $NODE_DIR"
    rm -rf "$NODE_DIR/pids"
  else
    rm -rf "$NODE_DIR"
    node_log "cluster down in $((SECONDS - started)) s"
  fi
}

# Removes the iptables chains named KUBE-* and CNI-* (and the rules that jump to them)
# from the nat, filter and mangle tables, IPv4 and IPv6.
node_iptables_clean() {
  local ipt table chains chain parent
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in nat filter mangle; do
      chains="$("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ {print $2}')"
      [[ -n "$chains" ]] || continue
      # Rules in any chain that jump to one of ours, then our chains themselves.
      "$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-A" && / -j (KUBE-|CNI-)/' |
        while read -r rule; do
          # shellcheck disable=SC2086 # the rule is a list of iptables arguments
          eval "$ipt -t $table ${rule/-A /-D }" 2>/dev/null
        done
      for chain in $chains; do "$ipt" -t "$table" -F "$chain" 2>/dev/null; done
      for chain in $chains; do "$ipt" -t "$table" -X "$chain" 2>/dev/null; done
    done
  done
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  case "${1:-}" in
    up) cluster_up || { cluster_down; exit 1; } ;;
    down) cluster_down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
  esac
fi
