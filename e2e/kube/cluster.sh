# Starts etcd and kube-apiserver on 127.0.0.1 in $WORK, with generated keys:
# - a CA and serving certificate for the API server (kubectl verifies it);
# - a service-account signing key, so TokenRequest works and the chart's ServiceAccount
#   can get a token the operator then runs with;
# - a static token for an admin in system:masters (the test driver).
# Authorization is RBAC, so the chart's Role/ClusterRole is what limits the operator.

start_cluster() {
  local bin="$1"
  mkdir -p "$WORK/pki" "$WORK/etcd"
  (
    cd "$WORK/pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=strata-e2e-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out apiserver.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  ADMIN_TOKEN="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "$ADMIN_TOKEN,e2e-admin,e2e-admin,system:masters" >"$WORK/pki/tokens.csv"

  "$bin/etcd" --name e2e --data-dir "$WORK/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync >"$WORK/etcd.log" 2>&1 &
  ETCD_PID=$!

  "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$WORK/pki/apiserver.crt" --tls-private-key-file "$WORK/pki/apiserver.key" \
    --client-ca-file "$WORK/pki/ca.crt" \
    --token-auth-file "$WORK/pki/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$WORK/pki/sa.pub" \
    --service-account-signing-key-file "$WORK/pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --enable-priority-and-fairness=false \
    >"$WORK/kube-apiserver.log" 2>&1 &
  APISERVER_PID=$!

  cat >"$WORK/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $WORK/pki/ca.crt
users:
- name: admin
  user:
    token: $ADMIN_TOKEN
contexts:
- name: e2e
  context: {cluster: e2e, user: admin, namespace: default}
current-context: e2e
KUBECONFIG
  export KUBECONFIG="$WORK/kubeconfig"

  local deadline=$((SECONDS + 180))
  until kubectl get --raw /readyz >/dev/null 2>&1; do
    if ((SECONDS > deadline)) || ! kill -0 "$APISERVER_PID" 2>/dev/null; then
      echo "kube-apiserver did not become ready; last log lines:" >&2
      tail -30 "$WORK/kube-apiserver.log" >&2
      return 1
    fi
    sleep 1
  done
  # The API server creates the default namespace and bootstrap RBAC itself.
  until kubectl get namespace default >/dev/null 2>&1; do sleep 1; done
}

# A kubeconfig that authenticates as a ServiceAccount with a TokenRequest token.
service_account_kubeconfig() {
  local namespace="$1" account="$2" out="$3"
  local token
  token="$(kubectl -n "$namespace" create token "$account" --duration 2h)"
  sed -e "s|token: .*|token: $token|" -e "s|namespace: default|namespace: $namespace|" "$KUBECONFIG" >"$out"
}

stop_pid() {
  local pid="$1"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}
