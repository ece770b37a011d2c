#!/usr/bin/env bash
# Builds and caches what the end-to-end tests run: a single-node Kubernetes that runs pods.
#
# - from Debian's packages: containerd, runc, the CNI plugins (bridge, host-local,
#   portmap, loopback), conntrack, and mmdebstrap for the image's base (tools/image/);
# - from Kubernetes' own Go modules: etcd, kube-apiserver, kubectl, kube-controller-manager,
#   kube-scheduler, kubelet and kube-proxy (a scratch module requiring k8s.io/kubernetes
#   with its staging modules pinned to the matching published versions);
# - from CoreDNS's Go module: a CoreDNS with only the plugins a cluster DNS needs;
# - helm with `go install`;
# - the pod sandbox ("pause") image, from a few lines of C.
#
# Nothing is committed and nothing lands in the clone: sources, the Go build cache and the
# binaries live under $STRATA_CACHE (default /root/.cache/strata). Re-running is a no-op
# once everything exists for the pinned versions, so a warm machine pays nothing.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.32.4}"
HELM_VERSION="${HELM_VERSION:-3.16.4}"
COREDNS_VERSION="${COREDNS_VERSION:-1.12.1}"
STRATA_CACHE="${STRATA_CACHE:-/root/.cache/strata}"
BIN="$STRATA_CACHE/k8s/bin"
SRC="$STRATA_CACHE/k8s/src/kube-$KUBE_VERSION"
IMAGES="$STRATA_CACHE/k8s/images"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

export GOPATH="$STRATA_CACHE/go"
export GOCACHE="$STRATA_CACHE/go/cache"
export GOMODCACHE="$STRATA_CACHE/go/mod"
# Two cores are shared with everything else on the machine.
export GOFLAGS="-p=2 -buildvcs=false"
export CGO_ENABLED=0
# Only the module proxy is reachable from the build machines, not the checksum database.
export GOSUMDB="${GOSUMDB:-off}"

mkdir -p "$BIN" "$SRC" "$IMAGES"

stamp() { echo "$BIN/.$1-$2"; }

have() { [[ -x "$BIN/$1" && -f "$(stamp "$1" "$2")" ]]; }

# Debian's packages for the node: the container runtime and its network plugins.
install_node_packages() {
  local packages=(containerd runc containernetworking-plugins conntrack iptables mmdebstrap)
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return
  echo "installing ${missing[*]} from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# main_go PACKAGE CALL: a main that runs one Kubernetes command the way its own main does.
main_go() {
  cat <<GO
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"$1"
)

func main() {
	os.Exit(cli.Run($2))
}
GO
}

build_kube() {
  local cmds=(etcd kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy)
  local todo=()
  for cmd in "${cmds[@]}"; do have "$cmd" "$KUBE_VERSION" || todo+=("$cmd"); done
  ((${#todo[@]} == 0)) && return
  echo "building ${todo[*]} $KUBE_VERSION (cold: tens of minutes)" >&2
  local staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
    cloud-provider cluster-bootstrap code-generator component-base component-helpers
    controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
    endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
    kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
    sample-apiserver sample-cli-plugin sample-controller)
  local minor="0.${KUBE_VERSION#1.}"
  for cmd in "${cmds[@]}"; do mkdir -p "$SRC/cmd/$cmd"; done
  {
    echo "module strata.dev/kubetools"
    echo
    echo "go 1.23"
    echo
    echo "require k8s.io/kubernetes v$KUBE_VERSION"
    echo
    # k8s.io/kubernetes refers to its staging modules as v0.0.0; pin them to the
    # published versions that match the release.
    for m in "${staging[@]}"; do echo "replace k8s.io/$m => k8s.io/$m v$minor"; done
  } >"$SRC/go.mod"
  main_go k8s.io/kubernetes/cmd/kube-apiserver/app 'app.NewAPIServerCommand()' >"$SRC/cmd/kube-apiserver/main.go"
  main_go k8s.io/kubernetes/cmd/kube-controller-manager/app 'app.NewControllerManagerCommand()' \
    >"$SRC/cmd/kube-controller-manager/main.go"
  main_go k8s.io/kubernetes/cmd/kube-scheduler/app 'app.NewSchedulerCommand()' >"$SRC/cmd/kube-scheduler/main.go"
  main_go k8s.io/kubernetes/cmd/kubelet/app 'app.NewKubeletCommand()' >"$SRC/cmd/kubelet/main.go"
  main_go k8s.io/kubernetes/cmd/kube-proxy/app 'app.NewProxyCommand()' >"$SRC/cmd/kube-proxy/main.go"
  cat >"$SRC/cmd/kubectl/main.go" <<'GO'
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
GO
  cat >"$SRC/cmd/etcd/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
GO
  cd "$SRC"
  go mod tidy
  # Stamp the release into the binaries as Kubernetes' own build does, so version skew
  # checks in kubectl, helm and the kubelet see v$KUBE_VERSION rather than v0.0.0-master.
  local ldflags="-s"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=1"
    ldflags+=" -X $pkg.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X $pkg.gitTreeState=clean"
  done
  for cmd in "${todo[@]}"; do
    local start=$SECONDS
    go build -trimpath -ldflags="$ldflags" -o "$BIN/$cmd" "./cmd/$cmd"
    touch "$(stamp "$cmd" "$KUBE_VERSION")"
    echo "built $cmd in $((SECONDS - start)) s" >&2
  done
}

# CoreDNS links every plugin it knows by default (cloud SDKs included); this one has the
# few a cluster DNS uses. `bind` must be there: the Corefile binds the bridge address.
build_coredns() {
  have coredns "$COREDNS_VERSION" && return
  echo "building coredns $COREDNS_VERSION" >&2
  local src="$STRATA_CACHE/k8s/src/coredns-$COREDNS_VERSION"
  mkdir -p "$src"
  printf 'module strata.dev/coredns\n\ngo 1.23\n\nrequire github.com/coredns/coredns v%s\n' \
    "$COREDNS_VERSION" >"$src/go.mod"
  {
    echo "package main"
    echo
    echo "import ("
    for plugin in bind cache errors forward health kubernetes loadbalance log ready; do
      echo "	_ \"github.com/coredns/coredns/plugin/$plugin\""
    done
    echo "	_ \"github.com/coredns/coredns/core/dnsserver\""
    echo "	\"github.com/coredns/coredns/coremain\""
    echo ")"
    echo
    echo "func main() { coremain.Run() }"
  } >"$src/main.go"
  cd "$src"
  go mod tidy
  local start=$SECONDS
  go build -trimpath -ldflags=-s -o "$BIN/coredns" .
  touch "$(stamp coredns "$COREDNS_VERSION")"
  echo "built coredns in $((SECONDS - start)) s" >&2
}

build_helm() {
  have helm "$HELM_VERSION" && return
  echo "building helm $HELM_VERSION" >&2
  GOBIN="$BIN" go install -trimpath -ldflags=-s "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  touch "$(stamp helm "$HELM_VERSION")"
}

# The sandbox image every pod starts with: a process that holds the pod's namespaces,
# reaps orphans and exits on TERM. Built from pause.c, imported by the cluster script.
build_pause() {
  local out="$IMAGES/pause.oci.tar"
  local digest
  digest="$(cat "$HERE/pause.c" "$HERE/../../tools/image/oci-archive.py" | sha256sum | cut -c1-16)"
  [[ -f "$out" && -f "$IMAGES/.pause-$digest" ]] && return
  local root
  root="$(mktemp -d)"
  gcc -Os -static -o "$root/pause" "$HERE/pause.c"
  strip "$root/pause"
  tar -C "$root" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$root.tar" pause
  python3 "$HERE/../../tools/image/oci-archive.py" --out "$out" --name registry.k8s.io/pause:3.10 \
    --layer "$root.tar" --entrypoint /pause
  rm -rf "$root" "$root.tar" "$IMAGES"/.pause-*
  touch "$IMAGES/.pause-$digest"
}

install_node_packages
build_kube
build_coredns
build_helm
build_pause
"$BIN/kube-apiserver" --version
"$BIN/kubectl" version --client
"$BIN/etcd" --version | sed -n 1p
"$BIN/helm" version --short
"$BIN/coredns" -version | sed -n 1p
