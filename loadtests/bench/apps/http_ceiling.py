"""The HTTP ceiling: a bare ASGI app under uvicorn (httptools, uvloop) that reads the whole request body and
answers one constant JSON prediction, with no model. No server that does real work can beat it."""

from __future__ import annotations

import orjson

BODY = orjson.dumps({"predictions": [[0.5]]})
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:  # read the body as every real server must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
