#!/usr/bin/env bash
# Builds and caches the Kubernetes tool set the operator's end-to-end tests run against:
# etcd, kube-apiserver and kubectl (from Kubernetes' own Go modules) and helm.
#
# Nothing is committed and nothing lands in the clone: sources, the Go build cache and
# the binaries live under $STRATA_CACHE (default /root/.cache/strata). Re-running is a
# no-op once the binaries exist for the pinned versions, so a warm machine pays nothing.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.32.4}"
HELM_VERSION="${HELM_VERSION:-3.16.4}"
STRATA_CACHE="${STRATA_CACHE:-/root/.cache/strata}"
BIN="$STRATA_CACHE/k8s/bin"
SRC="$STRATA_CACHE/k8s/src/kube-$KUBE_VERSION"

export GOPATH="$STRATA_CACHE/go"
export GOCACHE="$STRATA_CACHE/go/cache"
export GOMODCACHE="$STRATA_CACHE/go/mod"
# Two cores are shared with everything else on the machine.
export GOFLAGS="-p=2 -buildvcs=false"
export CGO_ENABLED=0
# Only the module proxy is reachable from the build machines, not the checksum database.
export GOSUMDB="${GOSUMDB:-off}"

mkdir -p "$BIN" "$SRC"

stamp() { echo "$BIN/.$1-$2"; }

have() { [[ -x "$BIN/$1" && -f "$(stamp "$1" "$2")" ]]; }

build_kube() {
  if have kube-apiserver "$KUBE_VERSION" && have kubectl "$KUBE_VERSION" && have etcd "$KUBE_VERSION"; then
    return
  fi
  echo "building etcd, kube-apiserver and kubectl $KUBE_VERSION (cold: tens of minutes)" >&2
  local staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
    cloud-provider cluster-bootstrap code-generator component-base component-helpers
    controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
    endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
    kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
    sample-apiserver sample-cli-plugin sample-controller)
  local minor="0.${KUBE_VERSION#1.}"
  mkdir -p "$SRC/cmd/kube-apiserver" "$SRC/cmd/kubectl" "$SRC/cmd/etcd"
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
  cat >"$SRC/cmd/kube-apiserver/main.go" <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
GO
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
  # checks in kubectl and helm see v$KUBE_VERSION rather than v0.0.0-master.
  local ldflags="-s"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=1"
    ldflags+=" -X $pkg.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X $pkg.gitTreeState=clean"
  done
  for cmd in etcd kube-apiserver kubectl; do
    go build -trimpath -ldflags="$ldflags" -o "$BIN/$cmd" "./cmd/$cmd"
    touch "$(stamp "$cmd" "$KUBE_VERSION")"
  done
}

build_helm() {
  if have helm "$HELM_VERSION"; then
    return
  fi
  echo "building helm $HELM_VERSION" >&2
  GOBIN="$BIN" go install -trimpath -ldflags=-s "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  touch "$(stamp helm "$HELM_VERSION")"
}

build_kube
build_helm
"$BIN/kube-apiserver" --version
"$BIN/kubectl" version --client
"$BIN/etcd" --version | head -1
"$BIN/helm" version --short
