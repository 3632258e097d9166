#!/usr/bin/env bash
# The main job: a 3-node Socket.IO cluster (sio-node, socketioxide + the Redis adapter)
# on the local Redis, with a chat page on each node.
#
#   scripts/demo.sh            # ports 3000 3001 3002 (SIO_DEMO_PORTS="4000 4001 4002" to change)
#   SIO_DEMO_MODE=sharded scripts/demo.sh   # sharded pub/sub instead of classic
#
# Brings Redis (and the npm socket.io client the page loads) up if needed, builds sio-node,
# starts the three nodes, prints the URLs and waits; Ctrl-C stops the nodes.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

"$REPO_ROOT/scripts/services.sh" up build redis node
eval "$("$REPO_ROOT/scripts/services.sh" env)"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/socketio-cluster/target}
cargo build --quiet -p demo --bin sio-node
BIN=$CARGO_TARGET_DIR/debug/sio-node

PORTS=(${SIO_DEMO_PORTS:-3000 3001 3002})
QUERY=""
[ "${SIO_DEMO_MODE:-classic}" = sharded ] && QUERY="?mode=sharded"
URL="${REDIS_URL}${QUERY}"

PIDS=()
stop() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

names=(A B C)
for i in "${!PORTS[@]}"; do
    "$BIN" --port "${PORTS[$i]}" --id "${names[$i]:-N$i}" --adapter "$URL" &
    PIDS+=($!)
done
for port in "${PORTS[@]}"; do
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
done
echo
echo "3-node cluster on $URL:"
for port in "${PORTS[@]}"; do
    echo "  http://127.0.0.1:$port/    health: $(curl -fsS "http://127.0.0.1:$port/health" || echo down)"
done
echo "Open two of them, join the same room and send a message. Ctrl-C stops the nodes."
wait
