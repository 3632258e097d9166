#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz / libFuzzer, AddressSanitizer) of every decoder that
# reads network input: the node-redis, node-cluster and python dialects and the
# MessagePack / JSON value decoders (the transports hand bytes over unparsed; Redis, Kafka
# and AMQP framing is the client libraries').
#
#   scripts/fuzz.sh [RUNS] [TARGET...]     default: 10000000 executions of every target
#
# libFuzzer keeps its growing corpus in memory: with inputs up to 64 KiB the dialect
# targets pass libFuzzer's default 2 GB RSS limit after about 4 million executions, so
# the limit is FUZZ_RSS_LIMIT_MB (default 8192); LeakSanitizer still reports any leak.
#
# The corpus starts from the captured vectors (adapter-core/tests/fixtures) and grows in
# .cache/fuzz/corpus/<target> (gitignored); a crash leaves its input in
# adapter-core/fuzz/artifacts/<target>/ and fails the run. The always-on suite runs a
# shorter, non-guided mutation run of the same decoders (adapter-core/tests/fuzz_decoders.rs).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
RUNS=${1:-10000000}
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(node_redis node_cluster python values)
CACHE=$REPO_ROOT/.cache/fuzz
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo fuzz passes nightly-only flags (-Zsanitizer); the stable toolchain takes them so
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=$CACHE/target
python3 - "$CACHE/corpus" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
def seed(target, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-%016x" % (hash(data) & (2**64 - 1))), "wb") as f:
        f.write(data)
for path in glob.glob("adapter-core/tests/fixtures/**/*.json", recursive=True):
    try:
        doc = json.load(open(path))
    except ValueError:
        continue
    for m in doc.get("messages", []) if isinstance(doc, dict) else []:
        if "hex" not in m:
            continue
        data = bytes.fromhex(m["hex"])
        seed("values", data)
        if "/python/" in path:
            seed("python", data)
        else:
            for pick in range(5):
                seed("node_redis", bytes([pick]) + data)
            for pick in range(3):
                seed("node_cluster", bytes([pick]) + data)
PY
status=0
for t in "${TARGETS[@]}"; do
    echo "fuzz: $t, $RUNS executions" >&2
    cargo fuzz run --fuzz-dir adapter-core/fuzz "$t" "$CACHE/corpus/$t" -- \
        -runs="$RUNS" -max_len=65536 -rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-8192}" -print_final_stats=1 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss|Done|==|SUMMARY|artifact)' || true
    # cargo fuzz exits non-zero on a finding; the grep above hides its status, so look
    # for what it leaves: crash-, oom-, leak-, timeout- inputs
    if ls adapter-core/fuzz/artifacts/"$t"/* >/dev/null 2>&1; then
        echo "fuzz: $t: findings in adapter-core/fuzz/artifacts/$t/" >&2
        status=1
    fi
done
exit $status
