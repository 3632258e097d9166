#!/usr/bin/env bash
# Measures how many `join` acks are lost, per server mode:
#   handler          unpatched socketioxide 0.18.9, handlers registered in the connect handler
#   middleware       unpatched, handlers registered in a connect middleware (the workaround)
#   handler+patch    socketioxide 0.18.9 + fix.patch, handlers registered in the connect handler
#
# Usage: ./run.sh [RUNS=3] [CLIENTS=500] [TRANSPORT=websocket|polling]
# Needs cargo, patch, node and socket.io-client (set NODE_PATH if it is not found by node).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUNS=${1:-3} CLIENTS=${2:-500} TRANSPORT=${3:-websocket} PORT=${PORT:-3131} # uses PORT..PORT+2
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/socketio-upstream-target}
export NODE_PATH=${NODE_PATH:-$HERE/../../../.cache/node/node_modules}
WORK=$(mktemp -d)
SERVERS=()
cleanup() { for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT
build() { nice -n 19 cargo build --release -j 1 --quiet "$@"; }

echo "building the unpatched server..." >&2
(cd "$HERE" && build)
cp "$CARGO_TARGET_DIR/release/socketioxide-connect-race" "$WORK/server"

echo "building the patched server..." >&2
REGISTRY_SRC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/socketioxide-0.18.9 | head -n 1)
cp -r "$REGISTRY_SRC" "$WORK/socketioxide"
patch -s -d "$WORK/socketioxide" -p1 < "$HERE/fix.patch"
mkdir "$WORK/repro" && cp -r "$HERE/Cargo.toml" "$HERE/Cargo.lock" "$HERE/src" "$WORK/repro/"
(cd "$WORK/repro" && build --config "patch.crates-io.socketioxide.path=\"$WORK/socketioxide\"")
cp "$CARGO_TARGET_DIR/release/socketioxide-connect-race" "$WORK/server-patched"

MODES=(handler middleware handler+patch)
BINS=(server server server-patched)
for i in 0 1 2; do
  "$WORK/${BINS[i]}" --port $((PORT + i)) --mode "${MODES[i]%%+*}" >/dev/null &
  SERVERS+=($!)
  until (exec 3<>"/dev/tcp/127.0.0.1/$((PORT + i))") 2>/dev/null; do
    kill -0 "${SERVERS[i]}" && sleep 0.1  # exits if the server died (port in use?)
  done
done

# The modes are interleaved run by run, so that they are measured under the same machine load.
TOTAL=(0 0 0)
printf '%-14s %4s %8s %7s  %s\n' mode run clients missed "missed indices"
for run in $(seq 1 "$RUNS"); do
  for i in 0 1 2; do
    out=$(node "$HERE/client.js" --url "http://127.0.0.1:$((PORT + i))" --clients "$CLIENTS" \
      --transport "$TRANSPORT" || true)
    missed=$(node -e 'const r = JSON.parse(process.argv[1]); console.log(r.missed.length, JSON.stringify(r.missed))' "$out")
    printf '%-14s %4s %8s %7s  %s\n' "${MODES[i]}" "$run" "$CLIENTS" ${missed}
    TOTAL[i]=$((TOTAL[i] + ${missed%% *}))
  done
done
echo
for i in 0 1 2; do
  echo "${MODES[i]}: ${TOTAL[$i]} missed of $((RUNS * CLIENTS)) ($TRANSPORT)"
done
