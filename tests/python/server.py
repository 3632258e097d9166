"""A python-socketio server on a Redis message queue, for the interop suites.

    server.py PORT REDIS_URL CHANNEL NAME

Clients join the rooms listed in their auth payload ({"rooms": [...]}) in namespaces "/"
and "/admin". Prints "ready" once listening.
"""
import sys

import socketio
from aiohttp import web

port, redis_url, channel, name = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
mgr = socketio.AsyncRedisManager(redis_url, channel=channel)
sio = socketio.AsyncServer(client_manager=mgr, async_mode="aiohttp", cors_allowed_origins="*")
app = web.Application()
sio.attach(app)


def on_connect(namespace):
    async def connect(sid, environ, auth):
        for room in (auth or {}).get("rooms", []):
            await sio.enter_room(sid, room, namespace=namespace)

    return connect


for nsp in ("/", "/admin"):
    sio.on("connect", on_connect(nsp), namespace=nsp)


async def started(_app):
    print("ready", flush=True)


app.on_startup.append(started)
web.run_app(app, host="127.0.0.1", port=port, print=None)
