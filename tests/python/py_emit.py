"""Emits through python-socketio's own write-only client manager, as a Celery worker
would, for the Flask-SocketIO suite (tests/tests/flask_interop.rs).

    py_emit.py URL CHANNEL EMITS_JSON

URL picks the manager as Flask-SocketIO does: redis:// / rediss:// -> RedisManager,
kafka:// -> KafkaManager, anything else -> KombuManager; all with write_only=True.
EMITS_JSON is a list of {"event", "args": [...], "namespace"?, "room"?, "skip_sid"?};
in args, {"$bin": base64} becomes bytes. Several args are passed as a tuple (python-socketio
sends them as several arguments), one as itself.

Prints "ok" after the last emit, or "error TYPE: MESSAGE" (and exits 1) when the manager
raises. Runs under any python-socketio version (5.13.0 pickles, >= 5.14 writes JSON).
"""
import base64
import json
import sys

import socketio

url, channel, emits = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])


def from_wire(v):
    if isinstance(v, list):
        return [from_wire(x) for x in v]
    if isinstance(v, dict):
        if set(v) == {"$bin"}:
            return base64.b64decode(v["$bin"])
        return {k: from_wire(x) for k, x in v.items()}
    return v


try:
    if url.startswith(("redis://", "rediss://")):
        mgr = socketio.RedisManager(url, channel=channel, write_only=True)
    elif url.startswith("kafka://"):
        mgr = socketio.KafkaManager(url, channel=channel, write_only=True)
    else:
        mgr = socketio.KombuManager(url, channel=channel, write_only=True)
    for e in emits:
        args = from_wire(e.get("args", []))
        data = args[0] if len(args) == 1 else tuple(args)
        mgr.emit(
            e["event"],
            data,
            namespace=e.get("namespace", "/"),
            room=e.get("room"),
            skip_sid=e.get("skip_sid"),
        )
except Exception as exc:
    print(f"error {type(exc).__name__}: {exc}", flush=True)
    sys.exit(1)
print("ok", flush=True)
