"""The fixed headers of serving/server.py (``FIXED_HEADERS``): headers an app repeats on many answers are checked
once, as uvicorn checks every header, and written into the response head; a bare app on a real ServingServer."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from loadtests.process import ROOT, free_port

APP = """
import sys
from uvicorn import Config
from serving.server import FIXED_HEADERS, ConnectionLimits, Drain, ServingProtocol, ServingServer

FIXED = {b"/ok": ((b"X-Model-Version", b"7"), (b"x-model-variant", b"onnx_fp32")),
         b"/bad-value": ((b"x-model-variant", b"a\\x01b"),), b"/bad-name": ((b"content-length", b"1"),)}

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await receive()
    start = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]}
    if FIXED_HEADERS in scope.get("extensions", {}):
        start[FIXED_HEADERS] = FIXED[scope["raw_path"]]
    await send(start)
    await send({"type": "http.response.body", "body": b"ok"})

config = Config(app, port=int(sys.argv[1]), http=ServingProtocol, ws="none", log_config=None, access_log=False,
                server_header=False)
ServingServer(config, ConnectionLimits(10, 10, 10), Drain(1.0)).run()
"""


@pytest.fixture(scope="module")
def port():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", APP, str(port)], cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def _exchange(sock: socket.socket, path: str) -> tuple[str, list[str], bytes]:
    """Status line, header lines and body of one answer on a kept-alive connection."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += sock.recv(65536)
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    length = int(next(v for k, _, v in (line.partition(": ") for line in lines) if k == "content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return status, lines, body


def test_fixed_headers_are_in_every_answer_once(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for _ in range(3):  # the first answer checks the tuple, the others reuse its lines
            status, lines, body = _exchange(sock, "/ok")
            assert status == "HTTP/1.1 200 OK" and body == b"ok"
            names = [line.partition(": ")[0] for line in lines]
            assert names[0] == "date" and sorted(names[1:]) == ["content-length", "content-type", "x-model-variant",
                                                                "x-model-version"]
            assert "x-model-version: 7" in lines and "x-model-variant: onnx_fp32" in lines


@pytest.mark.parametrize("path", ["/bad-value", "/bad-name"])
def test_a_fixed_header_uvicorn_would_refuse_is_refused(port, path):
    """As uvicorn answers an app that sends an invalid header (a control character, or a header whose value
    uvicorn acts on): 500, and the connection closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        status, lines, body = _exchange(sock, path)
        assert status == "HTTP/1.1 500 Internal Server Error" and body == b"Internal Server Error"
        assert "connection: close" in lines
