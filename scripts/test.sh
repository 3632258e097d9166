#!/usr/bin/env bash
# Run every test of the workspace against real services.
#
#   scripts/test.sh [extra cargo test args...]
#
# Brings the services up first (Redis, Redis Cluster, RabbitMQ, the tansu Kafka-protocol
# broker, the Node.js and Python peers, Chromium; see scripts/services.sh), reusing whatever
# is already running, then runs `cargo test --workspace --all-features`.
# CARGO_TARGET_DIR defaults to ~/.cache/socketio-cluster/target so that fresh clones share
# one build cache.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

"$REPO_ROOT/scripts/services.sh" up
eval "$("$REPO_ROOT/scripts/services.sh" env)"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/socketio-cluster/target}
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
exec cargo test --workspace --all-features "$@"
