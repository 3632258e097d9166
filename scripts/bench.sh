#!/usr/bin/env bash
# The benchmark harness: one command that builds in release mode, brings up the services
# and the peers, and runs every scenario against our code and, interleaved in the same run,
# against the references (raw broker clients, Node.js socket.io + @socket.io/redis-adapter
# or @socket.io/redis-streams-adapter,
# @socket.io/redis-emitter, python-socketio, socketioxide + socketioxide-redis).
#
#   scripts/bench.sh [--runs 3] [--quick] [--only publish,fanout,latency,cross,ingest,rooms,streams,kafka,amqp]
#
# Prints one table of medians and ratios and writes bench/out/{results.json,table.md} and
# the plots bench/out/*.png. Exits 1 if sio-node lost a delivery. A full run takes about
# 25 minutes on 2 cores; --quick is a smoke run (smaller counts), not for BENCHMARKS.md.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

SIO_WITH_BROWSER=0 "$REPO_ROOT/scripts/services.sh" up redis rabbitmq kafka node python
eval "$("$REPO_ROOT/scripts/services.sh" env)"
"$SIO_PYTHON" -c "import matplotlib" 2>/dev/null || "$SIO_PYTHON" -m pip install -q matplotlib >&2

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/socketio-cluster/target}
echo "bench: cargo build --release (sio-node, sio, sio-bench)" >&2
cargo build --release -p demo -p socketio-emitter -p bench \
    --features demo/kafka,demo/amqp,socketio-emitter/cli,socketio-emitter/kafka,socketio-emitter/amqp,bench/kafka,bench/amqp >&2

OUT="$REPO_ROOT/bench/out"
status=0
python3 "$REPO_ROOT/bench/suite.py" --bin "$CARGO_TARGET_DIR/release" --out "$OUT" "$@" || status=$?
if [ -f "$OUT/results.json" ]; then
    "$SIO_PYTHON" "$REPO_ROOT/bench/python/plot.py" "$OUT/results.json" "$OUT" >&2 || echo "bench: plotting failed" >&2
fi
exit $status
