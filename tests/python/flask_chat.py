"""A Flask-SocketIO chat on a message queue: the seed application's shape, for the
Flask-SocketIO end-to-end suite (tests/tests/flask_interop.rs).

    flask_chat.py PORT MESSAGE_QUEUE CHANNEL NAME [TICK_MS]

MESSAGE_QUEUE and CHANNEL are what a Flask app passes to SocketIO(message_queue=...,
channel=...): redis:// -> RedisManager, kafka:// -> KafkaManager, anything else (amqp://)
-> KombuManager. async_mode "threading" (werkzeug + simple-websocket, no eventlet).

Events, in namespaces "/" and "/admin", answered through the client's ack like sio-node's
contract:
  join ROOM | [ROOMS]            -> join_room            -> {"ok": true}
  leave ROOM | [ROOMS]           -> leave_room           -> {"ok": true}
  close_room ROOM                -> close_room (every member of the cluster leaves it)
                                 -> {"ok": true}
  send_to_room {room, text, event?}
                                 -> emit(event or "chat", {"from", "text"}, to=room)
                                    (a broadcast through the message queue)
                                 -> {"ok": true} or {"error": "..."}
  ask {sid, event, args?}        -> socketio.call(event, *args, to=sid): an emit with a
                                    callback to one client, anywhere in the cluster
                                    (a cross-host ack through the message queue)
                                 -> {"answer": what the client acked} or {"error": "..."}
  whoami                         -> {"node": NAME, "sid": sid}
A background task (socketio.start_background_task) emits "tick" {"from": NAME, "n": n}
to every client of "/" every TICK_MS milliseconds (default 300), n = 1, 2, ...
"""
import logging
import sys

from flask import Flask, request
from flask_socketio import SocketIO, close_room, emit, join_room, leave_room

port, queue, channel, name = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
tick_ms = int(sys.argv[5]) if len(sys.argv) > 5 else 300

# python-socketio's warnings and errors (a message-queue listener that lost its
# subscription and retries, a handler error) on stderr, its per-event lines not
logging.basicConfig(format=f"[{name}] %(name)s %(levelname)s %(message)s")
log = logging.getLogger("flask_chat.socketio")
log.setLevel(logging.WARNING)

app = Flask(__name__)
socketio = SocketIO(
    app,
    message_queue=queue,
    channel=channel,
    async_mode="threading",
    cors_allowed_origins="*",
    logger=log,
)


def rooms_of(data):
    if isinstance(data, str):
        return [data]
    if isinstance(data, list) and all(isinstance(r, str) for r in data):
        return data
    return []


def register(nsp):
    @socketio.on("join", namespace=nsp)
    def on_join(data=None):
        rooms = rooms_of(data)
        if not rooms:
            return {"error": "join: a room or a list of rooms"}
        for room in rooms:
            join_room(room)
        return {"ok": True}

    @socketio.on("leave", namespace=nsp)
    def on_leave(data=None):
        rooms = rooms_of(data)
        if not rooms:
            return {"error": "leave: a room"}
        for room in rooms:
            leave_room(room)
        return {"ok": True}

    @socketio.on("close_room", namespace=nsp)
    def on_close_room(data=None):
        if not isinstance(data, str):
            return {"error": "close_room: a room"}
        close_room(data)
        return {"ok": True}

    @socketio.on("send_to_room", namespace=nsp)
    def on_send_to_room(data=None):
        data = data or {}
        room = data.get("room")
        if not isinstance(room, str):
            return {"error": "send_to_room: {room, text}"}
        try:
            emit(data.get("event", "chat"), {"from": name, "text": data.get("text")}, to=room)
        except Exception as e:  # the message queue refused it (KafkaManager: see the suite)
            return {"error": f"{type(e).__name__}: {e}"}
        return {"ok": True}

    @socketio.on("ask", namespace=nsp)
    def on_ask(data=None):
        data = data or {}
        try:
            answer = socketio.call(data["event"], *data.get("args", []), to=data["sid"], namespace=nsp, timeout=5)
        except Exception as e:
            return {"error": f"{type(e).__name__}: {e}"}
        return {"answer": answer}

    @socketio.on("whoami", namespace=nsp)
    def on_whoami(data=None):
        return {"node": name, "sid": request.sid}


for nsp in ("/", "/admin"):
    register(nsp)


def ticker():
    n = 0
    while True:
        socketio.sleep(tick_ms / 1000)
        n += 1
        try:
            socketio.emit("tick", {"from": name, "n": n}, namespace="/")
        except Exception as e:
            print(f"[{name}] tick {n}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    socketio.start_background_task(ticker)
    print(f"[{name}] Flask-SocketIO on {port}, queue {queue} channel {channel}", file=sys.stderr, flush=True)
    socketio.run(app, host="127.0.0.1", port=port, allow_unsafe_werkzeug=True, log_output=False)
