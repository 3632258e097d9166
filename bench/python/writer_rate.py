"""Publish rate of python-socketio's write-only RedisManager (an external emitter).

    .cache/venv/bin/python bench/python/writer_rate.py \
      '{"redis":"redis://127.0.0.1:6379","channel":"socketio","room":"r","n":20000,"payload":100}'

Prints {"n","secs","rate"}. Calls
`socketio.RedisManager(url, channel=channel, write_only=True).emit("m", data=(seq, t_ms,
pad), room=room, namespace="/")` n times. `data` is a TUPLE: PubSubManager.emit turns a
tuple into the list [seq, t_ms, pad] and the receiving server's _handle_emit turns a list
of more than one item back into a tuple, which Manager.emit expands into separate
arguments, so clients receive THREE arguments (a list would arrive as one argument).
Each emit JSON-encodes {"method":"emit",...} and does one synchronous redis-py PUBLISH on
`channel` (a full round trip per message, no pipelining), so the time ends when Redis has
acknowledged the last one. This is python-socketio's own pub/sub protocol, not the
Node.js redis-adapter one. "payload" is the size in bytes of the socket.io packet a
client receives, 2["m",seq,t_ms,"xx..."], reached by padding the last argument.
"""
import json
import sys
import time

import socketio


def main():
    cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    n = int(cfg.get("n", 20000))
    room = cfg.get("room", "r")
    mgr = socketio.RedisManager(cfg.get("redis", "redis://127.0.0.1:6379"),
                                channel=cfg.get("channel", "socketio"),
                                write_only=True)
    # pad so that 2["m",seq,t_ms,"pad"] (compact JSON, as python-socketio encodes
    # packets) is ~payload bytes
    base = len("2" + json.dumps(["m", n // 2, time.time() * 1000, ""],
                                separators=(",", ":")))
    pad = "x" * max(0, int(cfg.get("payload", 100)) - base)

    # connect outside the timed loop (_publish connects lazily on first use)
    mgr._redis_connect()
    mgr.redis.ping()

    # _publish logs and swallows a failed PUBLISH (returning None): count those
    failed = 0
    publish = mgr._publish

    def counting_publish(data):
        nonlocal failed
        r = publish(data)
        if r is None:
            failed += 1
        return r
    mgr._publish = counting_publish

    t0 = time.perf_counter()
    for seq in range(n):
        mgr.emit("m", data=(seq, time.time() * 1000, pad), room=room, namespace="/")
    secs = time.perf_counter() - t0
    if failed:
        raise RuntimeError(f"{failed} of {n} publishes failed")
    print(json.dumps({"n": n, "secs": secs, "rate": n / secs}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure as exit 1
        print(f"writer_rate: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
