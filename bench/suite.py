#!/usr/bin/env python3
"""The benchmark suite: every scenario against our code and, in the same run and
interleaved, against the references; medians of --runs runs, ratios, one table.

Run through scripts/bench.sh (it builds in release mode, brings up the services and the
peers, then calls this with the paths). Standard library only.

    suite.py --bin DIR --out DIR [--runs 3] [--quick] [--only fanout,latency,...]

Writes OUT/results.json (every run), OUT/table.md (the medians and ratios) and prints the
table. Exits 1 if any of our servers lost a delivery (the harness counts deliveries, not
just rates).
"""
import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
KAFKA = os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092")
AMQP = os.environ.get("AMQP_ADDR", "amqp://guest:guest@127.0.0.1:5672/%2f")
NODE_PATH = os.environ.get("SIO_NODE_MODULES", str(ROOT / ".cache/node/node_modules"))
PYTHON = os.environ.get("SIO_PYTHON", str(ROOT / ".cache/venv/bin/python"))
# MAXLEN ~ of the streams scenario (both sides): above the largest burst (20,000), so that
# the rows measure throughput, not trimming (with the default 10,000 a reader that falls
# more than 10,000 entries behind loses entries: counted, and a warning)
STREAM_MAXLEN = 100_000


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, within=20.0):
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {within} s")


def prefix(tag):
    return f"bench-{tag}-{uuid.uuid4().hex[:8]}"


def run_json(cmd, stdin=None, timeout=600, env=None):
    """Runs cmd, returns its last stdout line as JSON (raises on failure)."""
    cmd = [str(c) for c in cmd]
    p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} {' '.join(map(str, cmd[1:4]))}...: exit {p.returncode}: {p.stderr.decode()[-800:]}")
    lines = [l for l in p.stdout.decode().splitlines() if l.strip().startswith("{")]
    return json.loads(lines[-1])


def node_env():
    return dict(os.environ, NODE_PATH=NODE_PATH)


class Server:
    """One server under test, started fresh, stopped on close()."""

    def __init__(self, kind, bins, broker_url, tag, pfx=None, node_id="bench"):
        self.kind, self.port, self.prefix = kind, free_port(), pfx or prefix(tag)
        if kind == "sio-node-streams":
            kind, broker_url = "sio-node", f"{REDIS}?mode=streams&stream={self.prefix}&maxlen={STREAM_MAXLEN}"
        if kind == "sio-node":
            url = f"{broker_url}{'&' if '?' in broker_url else '?'}prefix={self.prefix}"
            cmd = [bins["sio-node"], "--port", str(self.port), "--id", node_id, "--adapter", url]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         env=dict(os.environ, RUST_LOG="warn"))
            wait_port(self.port)
            self.sender = f"ours:{url}"
        elif kind in ("node", "node-streams"):
            cfg = {"port": self.port, "redis": REDIS, "prefix": self.prefix, "id": node_id}
            streams = kind == "node-streams"
            if streams:
                cfg.update(mode="streams", stream=self.prefix, maxLen=STREAM_MAXLEN)
            self.proc = subprocess.Popen(["node", str(ROOT / "bench/node/server.js"), json.dumps(cfg)],
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, env=node_env())
            wait_port(self.port)
            mode = f"&mode=streams&stream={self.prefix}&maxlen={STREAM_MAXLEN}" if streams else ""
            self.sender = f"ours:{REDIS}?prefix={self.prefix}{mode}"
        elif kind == "sxr":
            cmd = [bins["sio-bench"], "sxr-server", "--port", str(self.port), "--redis", REDIS, "--prefix", self.prefix]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(self.port)
            self.sender = f"sxr:{REDIS}:{self.prefix}"
        else:
            raise ValueError(kind)
        time.sleep(0.3)

    def deliver(self, bins, **kw):
        cmd = [bins["sio-bench"], "deliver", "--server", f"http://127.0.0.1:{self.port}", "--sender", self.sender,
               "--server-pid", str(self.proc.pid)]
        for k, v in kw.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        return run_json(cmd)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, unit=""):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}{unit}"
    if abs(x) >= 10:
        return f"{x:.1f}{unit}"
    return f"{x:.2f}{unit}"


def ratio(a, b):
    return None if a is None or not b else a / b


class Suite:
    def __init__(self, args):
        self.args = args
        self.bins = {n: str(Path(args.bin) / n) for n in ["sio-node", "sio-bench", "sio"]}
        self.runs = args.runs
        self.results = {"runs": args.runs, "quick": args.quick, "publish": [], "fanout": [], "latency": [],
                        "ingest": [], "rooms": [], "cross": []}
        self.lost = []
        self.tables = []

    # ------------------------------------------------------------------ 1. publish
    def publish(self, broker):
        n = 20_000 if self.args.quick else 100_000
        depth = 512
        pfx = prefix("pub")
        subjects = {}

        def ours(url):
            return lambda: run_json([self.bins["sio-bench"], "publish", "--url", url, "--n", n, "--depth", depth])["rate"]

        def raw(url, *extra):
            return lambda: run_json([self.bins["sio-bench"], "raw", "--url", url, *extra, "--n", n, "--depth", depth])[
                "rate"]

        if broker == "redis":
            url = f"{REDIS}?prefix={pfx}"
            subjects["ours: emitter library"] = ours(url)
            subjects["ours: sio emit --stdin"] = lambda: self.cli_stdin(url, n)
            subjects["raw redis-rs, same bytes"] = raw(REDIS, "--prefix", pfx)
            subjects["redis-benchmark PUBLISH -P 512"] = lambda: self.redis_benchmark(n, depth)
            subjects["@socket.io/redis-emitter 5.1"] = lambda: run_json(
                ["node", str(ROOT / "bench/node/emitter_rate.js"),
                 json.dumps({"redis": REDIS, "prefix": pfx, "room": "bench", "n": n, "payload": 100})],
                env=node_env())["rate"]
            subjects["python-socketio RedisManager(write_only)"] = lambda: run_json(
                [PYTHON, str(ROOT / "bench/python/writer_rate.py"),
                 json.dumps({"redis": REDIS, "channel": pfx, "room": "bench", "n": min(n, 20_000), "payload": 100})])["rate"]
        elif broker == "streams":
            subjects["ours: emitter library"] = ours(f"{REDIS}?prefix={pfx}&mode=streams&stream={pfx}&maxlen={STREAM_MAXLEN}")
            subjects["ours: emitter library, classic pub/sub"] = ours(f"{REDIS}?prefix={pfx}")
        elif broker == "kafka":
            subjects["ours: emitter library"] = ours(f"kafka://{KAFKA}?prefix={pfx}")
            subjects["raw rdkafka, same bytes"] = raw(f"kafka://{KAFKA}/{pfx}")
        else:
            subjects["ours: emitter library"] = ours(f"{AMQP}{'&' if '?' in AMQP else '?'}prefix={pfx}")
            subjects["raw lapin, confirms, same bytes"] = raw(f"{AMQP}#{pfx}-raw/{pfx}#/#")
        got = {s: [] for s in subjects}
        for r in range(self.runs):
            for name, f in subjects.items():
                try:
                    got[name].append(f())
                except Exception as e:  # a reference that fails is reported, not fatal
                    log(f"publish {broker} {name}: {e}")
                    got[name].append(None)
        rows = []
        for name, xs in got.items():
            m = median(xs)
            self.results["publish"].append({"broker": broker, "subject": name, "rates": xs, "median": m})
            rows.append([name, fmt(m, "/s"), fmt(ratio(median(got["ours: emitter library"]), m), "x")])
        self.table(f"1. Emitter publish rate, {broker}, one process, {n:,} emits of ~110 bytes, {depth} in flight "
                   f"(ratio: ours library / row)", ["sender", "median emits/s", "ours/row"], rows)

    def cli_stdin(self, url, n):
        lines = "".join(json.dumps({"event": "m", "args": [i, time.time() * 1000, "x" * 40], "to": ["bench"]}) + "\n"
                        for i in range(n)).encode()
        t = time.time()
        p = subprocess.run([self.bins["sio"], "--url", url, "emit", "--stdin"], input=lines, capture_output=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.decode()[-300:])
        return n / (time.time() - t)

    def redis_benchmark(self, n, depth):
        payload = "x" * 110
        p = subprocess.run(["redis-benchmark", "-q", "-c", "1", "-n", str(n), "-P", str(depth), "PUBLISH",
                            "bench-raw", payload], capture_output=True, text=True)
        # "PUBLISH bench-raw ...: 123456.79 requests per second, p50=..."
        for part in p.stdout.replace("\r", "\n").split("\n"):
            if "requests per second" in part:
                return float(part.split(":")[-1].split("requests")[0].strip().replace(",", ""))
        raise RuntimeError(p.stdout[-300:] + p.stderr[-300:])

    # ------------------------------------------------------------------ 2. fan-out
    def fanout(self, broker, kinds, ks):
        burst = {10: 20_000, 100: 3_000, 1000: 300}
        rows = []
        for k in ks:
            n = burst[k] // (4 if self.args.quick else 1)
            got = {kind: [] for kind in kinds}
            for r in range(self.runs):
                for kind in kinds:
                    s = Server(kind, self.bins, self.broker_url(broker), f"fan{k}")
                    try:
                        res = s.deliver(self.bins, clients=k, mode="burst", n=n, depth=256)
                    finally:
                        s.close()
                    self.check(f"fanout {broker} K={k}", kind, res)
                    got[kind].append(res)
                    self.results["fanout"].append(dict(res, server=kind, broker=broker, k=k))
            for kind in kinds:
                d = median([x["deliveries_per_s"] for x in got[kind]])
                rows.append([kind, k, fmt(median([x["msgs_per_s"] for x in got[kind]]), "/s"), fmt(d, "/s"),
                             fmt(ratio(median([x["deliveries_per_s"] for x in got["sio-node"]]), d), "x"),
                             sum(x["lost"] for x in got[kind]),
                             fmt(median([x["server_cpu_s"] for x in got[kind]]), " s"),
                             fmt(median([x["client_cpu_s"] for x in got[kind]]), " s"),
                             fmt(median([x["secs"] for x in got[kind]]), " s")])
        self.table(f"2. Fan-out, {broker}: an external emitter bursts to a room of K websocket clients on one node "
                   f"(ratio: sio-node / row)",
                   ["server", "K", "msgs/s", "deliveries/s", "sio-node/row", "lost", "server CPU", "client+emitter CPU",
                    "wall"], rows)

    # ------------------------------------------------------------------ 3. latency
    def latency(self, broker, kinds, ks, rates):
        secs = 2 if self.args.quick else 5
        rows = []
        for k in ks:
            for rate in rates:
                got = {kind: [] for kind in kinds}
                for r in range(self.runs):
                    for kind in kinds:
                        s = Server(kind, self.bins, self.broker_url(broker), f"lat{k}")
                        try:
                            res = s.deliver(self.bins, clients=k, mode="paced", rate=rate, secs=secs)
                        finally:
                            s.close()
                        self.check(f"latency {broker} K={k} {rate}/s", kind, res)
                        got[kind].append(res)
                for kind in kinds:
                    m = {p: median([x[f"{p}_ms"] for x in got[kind]]) for p in ["p50", "p99", "p999"]}
                    self.results["latency"].append(dict(m, server=kind, broker=broker, k=k, rate=rate,
                                                        runs=got[kind]))
                    ours99 = median([x["p99_ms"] for x in got["sio-node"]])
                    rows.append([kind, k, rate, fmt(m["p50"], " ms"), fmt(m["p99"], " ms"), fmt(m["p999"], " ms"),
                                 fmt(ratio(ours99, m["p99"]), "x"),
                                 fmt(median([x["server_cpu_s"] for x in got[kind]]), " s")])
        self.table(f"3. Latency, {broker}: emit to client receipt on one clock at fixed rates, {secs} s per run "
                   f"(ratio: sio-node p99 / row p99, lower is better)",
                   ["server", "K", "msg/s", "p50", "p99", "p999", "p99 sio-node/row", "server CPU"], rows)

    # ------------------------------------------------------------------ 4. cross-node
    def cross(self):
        n, calls = (500, 50) if self.args.quick else (2_000, 200)
        got = {"sio-node": [], "node": []}
        for r in range(self.runs):
            for kind in got:
                pfx = prefix("cross")
                nodes = [Server(kind, self.bins, REDIS, "cross", pfx=pfx, node_id=f"N{i}") for i in range(3)]
                try:
                    time.sleep(1.0)  # let the nodes see each other
                    res = run_json([self.bins["sio-bench"], "cross", "--servers",
                                    ",".join(f"http://127.0.0.1:{x.port}" for x in nodes),
                                    "--clients-per-node", "10", "--n", str(n), "--calls", str(calls)])
                finally:
                    for x in nodes:
                        x.close()
                self.check("cross-node", kind, res)
                got[kind].append(res)
                self.results["cross"].append(dict(res, server=kind))
        rows = []
        keys = ["deliveries_per_s", "p50_ms", "p99_ms", "fetch_sockets_p50_ms", "fetch_sockets_p99_ms",
                "server_side_emit_p50_ms", "server_side_emit_p99_ms"]
        for kind in got:
            m = {key: median([x[key] for x in got[kind]]) for key in keys}
            rows.append([kind + " x3", fmt(m["deliveries_per_s"], "/s"), fmt(m["p50_ms"], " ms"), fmt(m["p99_ms"], " ms"),
                         fmt(m["fetch_sockets_p50_ms"], " ms"), fmt(m["fetch_sockets_p99_ms"], " ms"),
                         fmt(m["server_side_emit_p50_ms"], " ms"), fmt(m["server_side_emit_p99_ms"], " ms"),
                         sum(x["lost"] for x in got[kind])])
        self.table(f"4. Cross-node, Redis, 3 nodes x 10 clients: a client's `emit` to a room on every node "
                   f"({n:,} calls, 32 in flight), then {calls} sequential fetch_sockets and server_side_emit with acks",
                   ["servers", "deliveries/s", "delivery p50", "p99", "fetch_sockets p50", "p99",
                    "server_side_emit p50", "p99", "lost"], rows)

    # ------------------------------------------------------------------ 5, 6. local
    def ingest(self):
        n = 50_000 if self.args.quick else 200_000
        cfg = {"sockets": 10_000, "rooms": 1_000, "n": n}
        ours, node = [], []
        for r in range(self.runs):
            ours.append(run_json([self.bins["sio-bench"], "ingest", "--sockets", "10000", "--rooms", "1000", "--n",
                                  str(n)])["msgs_per_s"])
            node.append(run_json(["node", str(ROOT / "bench/node/ingest.js"), json.dumps(cfg)], env=node_env())[
                "msgs_per_s"])
        self.results["ingest"] = {"ours": ours, "node": node}
        self.table("5. Adapter ingest without websockets: broadcasts decoded and resolved to local sockets "
                   "(10k sockets in 1k rooms, node-redis classic format)",
                   ["adapter", "median msgs/s", "ours/row"],
                   [["ours (ClusterCore + IndexedNode)", fmt(median(ours), "/s"), "1.00x"],
                    ["socket.io-adapter + redis-adapter onmessage (Node.js)", fmt(median(node), "/s"),
                     fmt(ratio(median(ours), median(node)), "x")]])

    def rooms(self):
        mem_cfg = {"mode": "memory", "sockets": 100_000, "rooms_per_socket": 10, "rooms": 10_000}
        ours = [run_json([self.bins["sio-bench"], "rooms", "--mode", "memory"]) for _ in range(self.runs)]
        node = [run_json(["node", "--expose-gc", str(ROOT / "bench/node/rooms.js"), json.dumps(mem_cfg)],
                         env=node_env()) for _ in range(self.runs)]
        om = median([x["bytes_per_membership"] for x in ours])
        nm = median([x.get("rss_bytes_per_membership", x["bytes_per_membership"]) for x in node])
        rows = [["ours: RoomIndex (RSS growth)", fmt(om, " B"), "1.00x"],
                ["socket.io-adapter (RSS growth)", fmt(nm, " B"), fmt(ratio(om, nm), "x")]]
        self.table("6a. Room index memory per (socket, room) membership, 100k sockets x (10 rooms + own id)",
                   ["index", "bytes/membership", "ours/row"], rows)
        rows = []
        sizes = [1_000, 10_000, 100_000] if self.args.quick else [1_000, 10_000, 100_000, 1_000_000]
        for size in sizes:
            o = median([run_json([self.bins["sio-bench"], "rooms", "--mode", "broadcast", "--rooms", str(size)])[
                "ns_per_broadcast"] for _ in range(self.runs)])
            n = median([run_json(["node", str(ROOT / "bench/node/rooms.js"),
                                  json.dumps({"mode": "broadcast", "rooms": size, "hot": 10, "iterations": 2000})],
                                 env=node_env())["ns_per_broadcast"] for _ in range(self.runs)])
            rows.append([f"{size:,}", fmt(o, " ns"), fmt(n, " ns"), fmt(ratio(o, n), "x")])
            self.results["rooms"].append({"rooms": size, "ours_ns": o, "node_ns": n})
        self.results["rooms_memory"] = {"ours": ours, "node": node}
        self.table("6b. Broadcast to a room of 10 as the index grows (one socket per other room)",
                   ["rooms", "ours", "socket.io-adapter", "ours/row"], rows)

    # ------------------------------------------------------------------ helpers
    def broker_url(self, broker):
        return {"redis": REDIS, "streams": REDIS, "kafka": f"kafka://{KAFKA}", "amqp": AMQP}[broker]

    def check(self, what, kind, res):
        lost = res.get("lost", 0)
        if lost:
            log(f"{what}: {kind} lost {lost} of {res['expected']} deliveries")
            if kind.startswith("sio-node"):
                self.lost.append(f"{what}: {kind} lost {lost} of {res['expected']}")

    def table(self, title, head, rows):
        lines = [f"### {title}", "", "| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
        text = "\n".join(lines) + "\n"
        self.tables.append(text)
        print(text, flush=True)

    def environment(self):
        def out(cmd):
            try:
                return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
            except Exception:
                return "?"
        def npm(pkg):
            try:
                return json.loads((Path(NODE_PATH) / pkg / "package.json").read_text())["version"]
            except Exception:
                return "?"
        cpu = "?"
        try:
            cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
        except Exception:
            pass
        return {
            "machine": f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}",
            "rustc": out(["rustc", "--version"]), "node": out(["node", "--version"]),
            "redis": out(["redis-server", "--version"]),
            "rabbitmq-server": out(["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"]),
            "tansu (Kafka protocol)": out([os.environ.get("TANSU_BIN", "tansu"), "--version"]),
            "socket.io": npm("socket.io"), "@socket.io/redis-adapter": npm("@socket.io/redis-adapter"),
            "@socket.io/redis-emitter": npm("@socket.io/redis-emitter"),
            "@socket.io/redis-streams-adapter": npm("@socket.io/redis-streams-adapter"), "socket.io-client": npm("socket.io-client"),
            "python-socketio": out([PYTHON, "-c", "import socketio, importlib.metadata as m; print(m.version('python-socketio'))"]),
            "socketioxide": "0.18.9", "socketioxide-redis": "0.4.4",
        }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory of the release binaries")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller counts (a smoke run, not for BENCHMARKS.md)")
    ap.add_argument("--only", default="publish,fanout,latency,cross,ingest,rooms,streams,kafka,amqp")
    args = ap.parse_args()
    only = set(args.only.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    s = Suite(args)
    s.results["environment"] = s.environment()
    servers = ["sio-node", "node", "sxr"]
    started = time.time()
    if "publish" in only:
        s.publish("redis")
    if "fanout" in only:
        s.fanout("redis", servers, [10, 100, 1000])
    if "latency" in only:
        s.latency("redis", servers, [10, 100], [100, 1000, 5000])
    if "cross" in only:
        s.cross()
    if "ingest" in only:
        s.ingest()
    if "rooms" in only:
        s.rooms()
    if "streams" in only:
        # Redis Streams (mode=streams) against classic pub/sub and the Node.js streams adapter
        s.publish("streams")
        s.fanout("streams", ["sio-node", "sio-node-streams", "node-streams"], [10, 100, 1000])
        s.latency("streams", ["sio-node", "sio-node-streams", "node-streams"], [10, 100], [100, 1000, 5000])
    for broker in ["kafka", "amqp"]:
        if broker in only:
            s.publish(broker)
            s.fanout(broker, ["sio-node"], [10, 100, 1000])
            s.latency(broker, ["sio-node"], [10, 100], [100, 1000, 5000])
    s.results["secs"] = time.time() - started
    (out / "results.json").write_text(json.dumps(s.results, indent=1))
    env = s.results["environment"]
    header = "\n".join(f"- {k}: {v}" for k, v in env.items())
    (out / "table.md").write_text(f"Machine and versions:\n\n{header}\n\n" + "\n".join(s.tables))
    log(f"done in {s.results['secs']:.0f} s; results in {out}/results.json and {out}/table.md")
    if s.lost:
        log("FAILED: sio-node lost deliveries:\n  " + "\n  ".join(s.lost))
        sys.exit(1)


if __name__ == "__main__":
    main()
