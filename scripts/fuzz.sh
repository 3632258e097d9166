#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz / libFuzzer, AddressSanitizer) of every decoder that
# reads network input: the node-redis, node-cluster, node-streams (stream entry frames
# included) and python dialects and the MessagePack / JSON value decoders (the transports
# hand bytes over unparsed; Redis, Kafka and AMQP framing is the client libraries').
#
#   scripts/fuzz.sh [RUNS] [TARGET...]     default: 10000000 executions of every target
#
# Memory: AddressSanitizer records the call stack of every allocation and free in its
# StackDepot, which keeps each distinct stack for the life of the process. The decoders
# recurse (a value in an array in a map in ... up to 128 levels), and with the default
# 30-frame stacks every new path of nesting the fuzzer tries is a new stack: node_redis
# went to 1.7 million stacks, 435 MB of depot, in 550k executions (RSS 1 GB after two
# minutes) while the heap itself stayed at 46 MB; without ASan RSS stays at 34 MB.
# malloc_context_size=10 (the allocation and free stacks a report shows are cut to 10
# frames; the stack of a crash itself stays whole) bounds the distinct stacks: 82k, 10 MB
# after 635k executions, RSS flat at ~115 MB. A small quarantine and returning free
# memory to the OS keep the rest low (safe Rust has no use-after-free for a large
# quarantine to catch); inputs are at most FUZZ_MAX_LEN bytes (4096) and the RSS limit
# is FUZZ_RSS_LIMIT_MB (2048).
# LeakSanitizer still reports any leak.
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
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(node_redis node_cluster node_streams python values)
CACHE=$REPO_ROOT/.cache/fuzz
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo fuzz passes nightly-only flags (-Zsanitizer); the stable toolchain takes them so
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=$CACHE/target
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=10:quarantine_size_mb=16:allocator_release_to_os_interval_ms=1000}
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
        if "fields" in m and "/node-streams/" in path:
            # a stream entry, framed as the transport hands it over (transport/entry.rs)
            frame = b"".join(len(p).to_bytes(4, "big") + p for pair in m["fields"] for p in (x.encode() for x in pair))
            seed("node_streams", bytes([0]) + frame)
            continue
        if "hex" not in m:
            continue
        data = bytes.fromhex(m["hex"])
        seed("values", data)
        if "/node-streams/" in path:
            for pick in (1, 2):
                seed("node_streams", bytes([pick]) + data)
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
    started=$SECONDS
    cargo fuzz run --fuzz-dir adapter-core/fuzz "$t" "$CACHE/corpus/$t" -- \
        -runs="$RUNS" -max_len="${FUZZ_MAX_LEN:-4096}" -rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-2048}" -print_final_stats=1 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss|Done|==|SUMMARY|artifact)' || true
    echo "fuzz: $t: $((SECONDS - started)) s" >&2
    # cargo fuzz exits non-zero on a finding; the grep above hides its status, so look
    # for what it leaves: crash-, oom-, leak-, timeout- inputs
    if ls adapter-core/fuzz/artifacts/"$t"/* >/dev/null 2>&1; then
        echo "fuzz: $t: findings in adapter-core/fuzz/artifacts/$t/" >&2
        status=1
    fi
done
exit $status
