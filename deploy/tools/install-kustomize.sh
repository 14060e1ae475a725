#!/usr/bin/env bash
# Installs kustomize into .cache/bin/ (idempotent): built from its Go module through the Go module proxy, since
# release binaries cannot be downloaded here. `make install` calls this with no arguments, which installs
#   .cache/bin/kustomize-$KUSTOMIZE_PINNED   (and .cache/bin/kustomize, a link to it): the README's `kustomize build`
#   .cache/bin/kustomize-$KUSTOMIZE_OLDEST   the kustomize inside the oldest kubectl whose `kubectl apply -k` we support
# and the deployment tests render deploy/k8s/overlays/* with both and require the same output.
# `install-kustomize.sh v5.6.0` builds any other version beside them, e.g. to try the one of your kubectl
# (`kubectl version --client` names it).
set -euo pipefail
cd "$(dirname "$0")/../.."

KUSTOMIZE_PINNED=v5.8.2  # v5.8.3 needs Go >= 1.27
# kubectl 1.32 embeds v5.5.0, 1.33 v5.6.0, 1.34 and 1.35 v5.7.1, 1.36 v5.8.1 (kubernetes/kubernetes CHANGELOG-1.3x,
# "Dependencies"). 1.35-1.37 are upstream's supported minors; 1.32 is the oldest still in cloud providers' extended
# support, and the reason this is not v5.7.1: before v5.7 a `$patch: delete` followed by another document in one
# patch file panicked (see deploy/k8s/README.md, "Deploy").
KUSTOMIZE_OLDEST=v5.5.0
bin_dir="$PWD/.cache/bin"

[ $# -gt 0 ] || set -- "$KUSTOMIZE_PINNED" "$KUSTOMIZE_OLDEST"
for version in "$@"; do
  binary="$bin_dir/kustomize-$version"
  [ -x "$binary" ] && continue
  # Built into a folder of its own: `go install` names the binary `kustomize` whatever the version.
  build_dir="$bin_dir/build-$version"
  mkdir -p "$build_dir"
  GOBIN="$build_dir" GOFLAGS=-buildvcs=false go install "sigs.k8s.io/kustomize/kustomize/v5@$version"
  mv "$build_dir/kustomize" "$binary"
  rmdir "$build_dir"
  echo "installed kustomize $version at $binary"
done
if [ -x "$bin_dir/kustomize-$KUSTOMIZE_PINNED" ]; then
  ln -sfn "kustomize-$KUSTOMIZE_PINNED" "$bin_dir/kustomize"
fi
