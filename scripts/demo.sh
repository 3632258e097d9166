#!/usr/bin/env bash
# The main job: a Socket.IO cluster demo.
#
#   scripts/demo.sh
#
# Today this runs the in-process 3-node example of adapter-core (every cluster operation
# across three nodes on the in-memory transport). It brings the services up first so the
# same command keeps working when the demo moves to real brokers.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

"$REPO_ROOT/scripts/services.sh" up
eval "$("$REPO_ROOT/scripts/services.sh" env)"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/socketio-cluster/target}
exec cargo run --quiet -p socketio-adapter-core --features test-util --example three_nodes
