# The image the pods run (tools/image/build.sh) against the Dockerfile users build with a
# normal Docker: the same runtime user, working directory, ports and default command, and
# binaries that need nothing from the base beyond glibc. That the image runs is what the
# rest of the checks show. Sourced by run.sh after the image was built.

ARCHIVE="$STRATA_CACHE/image/strata-e2e.oci.tar"
export ARCHIVE

# image_config JQ: a field of the archive's image configuration.
image_config() {
  local manifest config
  manifest="$(tar -xOf "$ARCHIVE" index.json | jq -r '.manifests[0].digest | sub("sha256:"; "blobs/sha256/")')"
  config="$(tar -xOf "$ARCHIVE" "$manifest" | jq -r '.config.digest | sub("sha256:"; "blobs/sha256/")')"
  tar -xOf "$ARCHIVE" "$config" | jq -c "$1"
}
# dockerfile_runtime INSTRUCTION: the argument of an instruction of the Dockerfile's
# runtime stage.
dockerfile_runtime() {
  sed -n '/^FROM .* AS runtime/,$p' "$REPO/Dockerfile" | awk -v i="$1" '$1 == i {$1 = ""; sub(/^ /, ""); print}'
}
export -f image_config dockerfile_runtime

section "the image"
echo "   $(du -m "$ARCHIVE" | cut -f1) MB archive, layers $(tar -tvf "$ARCHIVE" | awk '/blobs/ && $3 > 1000000 {printf "%d MB ", $3 / 1e6}')"
check "image and Dockerfile run as the same user" equals "\"$(dockerfile_runtime USER)\"" image_config .config.User
check "image and Dockerfile share the working directory" equals "\"$(dockerfile_runtime WORKDIR)\"" image_config .config.WorkingDir
check "image and Dockerfile have the same default command" equals "$(dockerfile_runtime CMD | tr -d ' ')" \
  image_config .config.Cmd
check "image and Dockerfile expose the same ports" equals \
  "$(dockerfile_runtime EXPOSE | tr ' ' '\n' | sort -n | tr '\n' ' ')" \
  bash -c "image_config '.config.ExposedPorts | keys[]' | tr -d '\"' | sed 's|/tcp||' | sort -n | tr '\n' ' '"
check "the image names every binary the Dockerfile copies" bash -c \
  "for b in strata-broker strata-coordinator strata-operator strata; do grep -q \"target/release/\$b\" '$REPO/Dockerfile' && tar -xOf '$STRATA_CACHE/image/bin-e2e.tar' >/dev/null usr/local/bin/\$b || exit 1; done"
# Debian bookworm-slim, the Dockerfile's base, has glibc, libm and libgcc_s and no more.
beyond_glibc() {
  local b
  for b in strata-broker strata-coordinator strata-operator strata; do
    ldd "$CARGO_TARGET_DIR/$E2E_PROFILE/$b" | awk '{print $1}' |
      grep -Ev '^(linux-vdso\.so\.1|/lib64/ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1)$'
  done
  # No line is the answer; grep finding none is not a failure.
  return 0
}
export -f beyond_glibc
check "the binaries need nothing beyond glibc, libm and libgcc_s" equals "" beyond_glibc
