#!/usr/bin/env bash
# Runs the local stack in the foreground (called by `make run`, which builds
# build/portcullis.wasm and ensures Envoy first):
#
#   demo upstream   127.0.0.1:10001   (e2e/cmd/upstream)
#   cache server    127.0.0.1:10002   (cmd/cacheserver, in memory, 64 MiB)
#   gateway         127.0.0.1:10000   Envoy with envoy.yaml, --concurrency 2   (HOST=envoy, default)
#                                     or the wazero host with the same file    (HOST=wasmhost)
#   admin           127.0.0.1:9901
#
# JWT_SECRET is the HS256 secret (the documented dev default when unset, with
# a warning). Ctrl-C (or SIGTERM) stops everything; if one process dies,
# the others are stopped too.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
HOST=${HOST:-envoy}
ENVOY=${ENVOY:-envoy}
DEV_SECRET=portcullis-dev-secret-change-me-0123456789

if [[ -z "${JWT_SECRET:-}" ]]; then
  echo "run: warning: JWT_SECRET is not set; using the development secret \"$DEV_SECRET\" (never in production)" >&2
  export JWT_SECRET=$DEV_SECRET
fi

# Compile first, so the signals below reach the programs themselves, not `go run`.
mkdir -p build
"$GO" build -o build/upstream ./e2e/cmd/upstream
"$GO" build -o build/cacheserver ./cmd/cacheserver

case "$HOST" in
  envoy)
    gateway=("$ENVOY" -c envoy.yaml --concurrency 2)
    ;;
  wasmhost)
    # The wazero host (e2e/cmd/wasmhost) takes Envoy's place on the same ports.
    # Plugin configuration, node and VM environment come from envoy.yaml's wasm
    # filter; the routing is envoy.yaml's too: /api/* to the demo upstream, /api stripped.
    # Its admin listener (/ready, /stats) is on 127.0.0.1:9901 like Envoy's.
    "$GO" build -o build/wasmhost ./e2e/cmd/wasmhost
    gateway=(build/wasmhost -wasm build/portcullis.wasm -envoy-yaml envoy.yaml -workers 2
      -listen 127.0.0.1:10000 -cluster upstream=http://127.0.0.1:10001 -cluster cache=http://127.0.0.1:10002
      -cluster ratelimit=h2c://127.0.0.1:10003 -strip-prefix /api)
    ;;
  *)
    echo "run: unknown HOST=$HOST (want envoy or wasmhost)" >&2
    exit 2
    ;;
esac

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build/upstream -listen 127.0.0.1:10001 &
pids+=($!)
build/cacheserver -listen 127.0.0.1:10002 -backend memory -memory-bytes $((64 << 20)) &
pids+=($!)
"${gateway[@]}" &
pids+=($!)

cat >&2 <<EOF
run: gateway http://127.0.0.1:10000 ($HOST), admin http://127.0.0.1:9901, demo upstream http://127.0.0.1:10001, cache server http://127.0.0.1:10002
run: try   curl -s localhost:10000/health
run:       curl -s localhost:10000/api/public/hello
run:       curl -si -H "Authorization: Bearer \$(make -s token SUB=alice)" localhost:10000/api/hello   # twice: X-Cache MISS, then HIT
run: Ctrl-C stops everything
EOF

# Whichever exits first ends the run (and the EXIT trap stops the other).
set +e
wait -n "${pids[@]}"
status=$?
set -e
echo "run: a process exited (status $status); stopping" >&2
exit "$status"
