"""A python-socketio server on a message queue, for the interop suites.

    server.py PORT URL CHANNEL NAME

URL picks the manager as Flask-SocketIO does: redis:// -> AsyncRedisManager, amqp:// ->
AsyncAioPikaManager (the Kombu layout: a fanout exchange named after CHANNEL).
Clients join the rooms listed in their auth payload ({"rooms": [...]}) in namespaces "/"
and "/admin". Prints "ready" once listening.

Events its clients can send (each answered through the ack):
  ask_remote {sid, x}      sio.call("ask", x, to=sid): a callback across hosts; answers
                           what the socket acked (or {"error": ...})
  emit {event, args, to?, skip_sid?}   a server broadcast (to the whole cluster)
  enter_room / leave_room {sid, room}  move a socket of any host
  close_room {room}        every socket of the cluster leaves the room
  kick {sid}               disconnect a socket of any host
"""
import sys

import socketio
from aiohttp import web

port, url, channel, name = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
if url.startswith(("redis://", "rediss://")):
    mgr = socketio.AsyncRedisManager(url, channel=channel)
else:
    mgr = socketio.AsyncAioPikaManager(url, channel=channel)
sio = socketio.AsyncServer(client_manager=mgr, async_mode="aiohttp", cors_allowed_origins="*")
app = web.Application()
sio.attach(app)


def on_connect(namespace):
    async def connect(sid, environ, auth):
        for room in (auth or {}).get("rooms", []):
            await sio.enter_room(sid, room, namespace=namespace)

    return connect


def handlers(nsp):
    async def ask_remote(sid, data):
        try:
            return await sio.call("ask", data.get("x"), to=data["sid"], namespace=nsp, timeout=5)
        except Exception as e:  # noqa: BLE001 - the test reads the reason
            return {"error": f"{type(e).__name__}: {e}"}

    async def emit(sid, data):
        await sio.emit(data["event"], tuple(data.get("args", [])), to=data.get("to"),
                       skip_sid=data.get("skip_sid"), namespace=nsp)
        return {"ok": True}

    async def enter_room(sid, data):
        await sio.enter_room(data["sid"], data["room"], namespace=nsp)
        return {"ok": True}

    async def leave_room(sid, data):
        await sio.leave_room(data["sid"], data["room"], namespace=nsp)
        return {"ok": True}

    async def close_room(sid, data):
        await sio.close_room(data["room"], namespace=nsp)
        return {"ok": True}

    async def kick(sid, data):
        await sio.disconnect(data["sid"], namespace=nsp)
        return {"ok": True}

    for f in (ask_remote, emit, enter_room, leave_room, close_room, kick):
        sio.on(f.__name__, f, namespace=nsp)


for nsp in ("/", "/admin"):
    sio.on("connect", on_connect(nsp), namespace=nsp)
    handlers(nsp)


async def started(_app):
    print("ready", flush=True)


app.on_startup.append(started)
web.run_app(app, host="127.0.0.1", port=port, print=None)
