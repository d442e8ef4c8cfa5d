#!/usr/bin/env bash
# Prints the path of the pinned istioctl, installing it first when missing.
#
# The tests validate the manifests in istio/ with Istio's own validator
# (`istioctl validate`). It is built from the Go module proxy at a pinned
# commit (building takes about five minutes), into a cache outside the
# checkout so that later runs and other clones reuse it:
#   ${PORTCULLIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis}/bin/istioctl-<commit>/istioctl
# Progress goes to stderr; stdout is only the path.
set -euo pipefail

# istio/istio at eed52ebb66ad (2026-08-27, the 1.31 development line).
ISTIOCTL_VERSION=v0.0.0-20260827124520-eed52ebb66ad
ISTIOCTL_COMMIT=${ISTIOCTL_VERSION##*-}

cache=${PORTCULLIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis}
dir=$cache/bin/istioctl-$ISTIOCTL_COMMIT
bin=$dir/istioctl

if [[ ! -x $bin ]]; then
  echo "istioctl: installing istio.io/istio/istioctl@$ISTIOCTL_VERSION into $dir (about 5 minutes)" >&2
  mkdir -p "$dir"
  # Install into a fresh directory and move the binary into place only when
  # the build succeeded, so an interrupted build never leaves a broken file.
  tmp=$(mktemp -d "$dir/.install.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  GOBIN=$tmp "${GO:-go}" install "istio.io/istio/istioctl/cmd/istioctl@$ISTIOCTL_VERSION" >&2
  mv "$tmp/istioctl" "$bin"
fi
echo "$bin"
