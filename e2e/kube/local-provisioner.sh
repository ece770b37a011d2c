#!/usr/bin/env bash
# The e2e cluster's volume provisioner for StorageClass "local" (provisioner
# strata.dev/local-directory), started and stopped by cluster.sh:
#
#   local-provisioner.sh ROOT NODE
#
# Every claim of that class still waiting for a volume gets a directory under ROOT and a
# `local` PersistentVolume pinned to NODE, bound to the claim. The kubelet treats it like
# any local volume, so a pod's fsGroup owns it (hostPath volumes would ignore fsGroup and
# leave non-root pods unable to write). A claim asking for more than its capacity is grown
# (the class allows volume expansion). A volume its claim released is deleted with its
# directory, as reclaimPolicy Delete asks. One list of claims and volumes a second.
set -uo pipefail

root="$1"
node="$2"
provisioner=strata.dev/local-directory
mkdir -p "$root"

provision() { # namespace claim uid size access-modes
  local dir="$root/pvc-$3"
  # Already made: the claim is only waiting for the binder.
  [[ -d "$dir" ]] && return
  mkdir -p "$dir"
  kubectl create -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pvc-$3
  annotations: {pv.kubernetes.io/provisioned-by: $provisioner}
spec:
  storageClassName: local
  capacity: {storage: "$4"}
  accessModes: [$5]
  persistentVolumeReclaimPolicy: Delete
  claimRef: {namespace: $1, name: $2, uid: $3}
  local: {path: $dir}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$node]}]
YAML
}

# A directory has no size of its own: growing a volume is recording its new capacity on
# the PersistentVolume and then on the claim's status, as an external resizer does once the
# volume and its filesystem have grown.
resize() { # namespace claim volume size
  kubectl patch persistentvolume "$3" --type=merge -p "{\"spec\":{\"capacity\":{\"storage\":\"$4\"}}}" >/dev/null &&
    kubectl -n "$1" patch persistentvolumeclaim "$2" --subresource=status --type=merge \
      -p "{\"status\":{\"capacity\":{\"storage\":\"$4\"}}}" >/dev/null
}

delete_volume() { # name
  kubectl delete persistentvolume "$1" --wait=false >/dev/null && rm -rf "${root:?}/$1"
}

while true; do
  kubectl get persistentvolumeclaims,persistentvolumes --all-namespaces -o json 2>/dev/null |
    jq -r --arg provisioner "$provisioner" '.items[]
      | if .kind == "PersistentVolumeClaim" and .status.phase == "Bound" then
          select(.spec.storageClassName == "local"
                 and .spec.resources.requests.storage != .status.capacity.storage)
          | ["resize", .metadata.namespace, .metadata.name, .spec.volumeName,
             .spec.resources.requests.storage]
        elif .kind == "PersistentVolumeClaim" then
          select(.status.phase == "Pending" and .spec.storageClassName == "local"
                 and (.spec.volumeName // "") == "")
          | ["provision", .metadata.namespace, .metadata.name, .metadata.uid,
             .spec.resources.requests.storage, ((.spec.accessModes // ["ReadWriteOnce"]) | join(","))]
        else
          select(.status.phase == "Released"
                 and .metadata.annotations["pv.kubernetes.io/provisioned-by"] == $provisioner)
          | ["delete", .metadata.name]
        end
      | @tsv' |
    while IFS=$'\t' read -r -a row; do
      case "${row[0]}" in
        provision) provision "${row[@]:1}" ;;
        resize) resize "${row[@]:1}" ;;
        delete) delete_volume "${row[1]}" ;;
      esac
    done
  sleep 1
done
