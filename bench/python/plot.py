"""Plots of benchmark results (matplotlib, Agg backend, PNG ~1000 px wide).

    .cache/venv/bin/python bench/python/plot.py results.json outdir

results.json:
  {"latency": [{"server":"sio-node","broker":"redis","k":10,"rate":100,
                "p50":..,"p99":..,"p999":..}, ...],
   "fanout":  [{"server":"sio-node","broker":"redis","k":10,"deliveries_per_s":..}, ...]}
Only entries with broker "redis" are plotted. Writes
  outdir/latency_k<K>.png  for every K in "latency" (so latency_k10.png, latency_k100.png):
                           x = offered rate (msg/s, log), y = latency (ms, log); one colour
                           per server, one line style per percentile (p50, p99, p999)
  outdir/fanout.png        x = K clients in the room (log), y = deliveries/s; one line per
                           server
and prints {"written": [paths]}. A server keeps its colour across all plots.
"""
import json
import statistics
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

PERCENTILES = [("p50", "-", "o"), ("p99", "--", "s"), ("p999", ":", "^")]
SIZE = (10, 6)  # inches, at DPI 100 -> 1000 x 600 px
DPI = 100


def series(rows, x, y):
    """Sorted (xs, ys) of the rows having numeric x and y; several rows at one x (the runs
    of a scenario) give their median."""
    by_x = {}
    for r in rows:
        if isinstance(r.get(x), (int, float)) and isinstance(r.get(y), (int, float)):
            by_x.setdefault(r[x], []).append(r[y])
    xs = sorted(by_x)
    return xs, [statistics.median(by_x[v]) for v in xs]


def plot_latency(rows, k, colours, path):
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    servers = sorted({r["server"] for r in rows})
    for server in servers:
        mine = [r for r in rows if r["server"] == server]
        for pct, style, marker in PERCENTILES:
            xs, ys = series(mine, "rate", pct)
            if xs:
                ax.plot(xs, ys, linestyle=style, marker=marker, color=colours[server],
                        linewidth=1.8, markersize=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(f"Delivery latency, Redis broker, K = {k} clients in the room", fontsize=14)
    ax.set_xlabel("offered rate (messages/s, log scale)", fontsize=12)
    ax.set_ylabel("latency, emit to client (ms, log scale)", fontsize=12)
    ax.grid(True, which="both", alpha=0.3)
    # two legends: colour = server, line style = percentile
    by_server = [Line2D([], [], color=colours[s], linewidth=2.5, label=s) for s in servers]
    by_pct = [Line2D([], [], color="black", linestyle=st, marker=mk, label=p)
              for p, st, mk in PERCENTILES]
    first = ax.legend(handles=by_server, title="server", loc="upper left", fontsize=10)
    ax.add_artist(first)
    ax.legend(handles=by_pct, title="percentile", loc="lower right", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_fanout(rows, colours, path):
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    for server in sorted({r["server"] for r in rows}):
        xs, ys = series([r for r in rows if r["server"] == server], "k", "deliveries_per_s")
        if xs:
            ax.plot(xs, ys, marker="o", color=colours[server], linewidth=2, label=server)
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(EngFormatter())
    ax.set_title("Fan-out throughput, Redis broker", fontsize=14)
    ax.set_xlabel("K clients in the room (log scale)", fontsize=12)
    ax.set_ylabel("deliveries/s (messages received by all clients)", fontsize=12)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="server", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        raise ValueError("usage: plot.py results.json outdir")
    with open(sys.argv[1]) as f:
        results = json.load(f)
    outdir = sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    latency = [r for r in results.get("latency", []) if r.get("broker") == "redis"]
    fanout = [r for r in results.get("fanout", []) if r.get("broker") == "redis"]
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = {s: cycle[i % len(cycle)]
               for i, s in enumerate(sorted({r["server"] for r in latency + fanout}))}

    written = []
    for k in sorted({r["k"] for r in latency}):
        path = os.path.join(outdir, f"latency_k{k}.png")
        plot_latency([r for r in latency if r["k"] == k], k, colours, path)
        written.append(path)
    if fanout:
        path = os.path.join(outdir, "fanout.png")
        plot_fanout(fanout, colours, path)
        written.append(path)
    print(json.dumps({"written": written}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure as exit 1
        print(f"plot: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
