"""Emits through python-socketio's own write-only client manager, as a Celery worker
would, for the Flask-SocketIO suite (tests/tests/flask_interop.rs).

    py_emit.py URL CHANNEL EMITS_JSON [flask]

URL picks the manager as Flask-SocketIO does: redis:// / rediss:// -> RedisManager,
kafka:// -> KafkaManager, anything else -> KombuManager; all with write_only=True.
With "flask", Flask-SocketIO's own external emitter does it instead:
SocketIO(message_queue=URL, channel=CHANNEL) without an app (which picks the same manager,
write-only), and its emit(event, data, namespace=, to=, skip_sid=).
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


def emitter():
    """emit(event, data, namespace, room, skip_sid) through the chosen sender."""
    if len(sys.argv) > 4 and sys.argv[4] == "flask":
        from flask_socketio import SocketIO

        external = SocketIO(message_queue=url, channel=channel)
        return lambda event, data, namespace, room, skip_sid: external.emit(
            event, data, namespace=namespace, to=room, skip_sid=skip_sid
        )
    if url.startswith(("redis://", "rediss://")):
        mgr = socketio.RedisManager(url, channel=channel, write_only=True)
    elif url.startswith("kafka://"):
        mgr = socketio.KafkaManager(url, channel=channel, write_only=True)
    else:
        mgr = socketio.KombuManager(url, channel=channel, write_only=True)
    return lambda event, data, namespace, room, skip_sid: mgr.emit(
        event, data, namespace=namespace, room=room, skip_sid=skip_sid
    )


try:
    emit = emitter()
    for e in emits:
        args = from_wire(e.get("args", []))
        emit(
            e["event"],
            args[0] if len(args) == 1 else tuple(args),
            e.get("namespace", "/"),
            e.get("room"),
            e.get("skip_sid"),
        )
except Exception as exc:
    print(f"error {type(exc).__name__}: {exc}", flush=True)
    sys.exit(1)
print("ok", flush=True)
