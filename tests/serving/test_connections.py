"""Slow clients, the connection cap and the SIGTERM drain (serving/server.py), against real ``modelyard serve``
processes with short timeouts, and the hard exit against a bare server whose shutdown is stuck."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx

from loadtests.process import ROOT, free_port

TEXT = {"instances": ["A wonderful film, the acting was superb."]}
PARTIAL_HEAD = b"POST /v1/models/imdb:predict HTTP/1.1\r\nHost: x\r\n"


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout bounds the wait)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def parse(raw: bytes) -> tuple[int, dict[str, str], dict]:
    """Status, headers (lower-case names) and JSON body of one HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def test_partial_heads_get_408_and_close_after_the_header_timeout(repo_copy, start_server):
    s = start_server(repo_copy, env={"MODELYARD_HEADER_TIMEOUT_S": "1"})
    t0 = time.monotonic()
    slow = [connect(s) for _ in range(50)]
    for sock in slow:
        sock.sendall(PARTIAL_HEAD)
    silent = connect(s)
    time.sleep(0.6)
    for sock in slow:  # still trickling: the deadline runs from the head's first byte, not the last
        sock.sendall(b"X-Slow: 1\r\n")
    answers = [parse(read_until_closed(sock)) for sock in slow]
    assert {status for status, _, _ in answers} == {408}
    assert answers[0][1]["connection"] == "close"
    assert "request head not received within 1 s" in answers[0][2]["error"]
    assert read_until_closed(silent) == b""  # no request begun: closed without an answer
    assert time.monotonic() - t0 < 2.5
    assert s.client.post("/v1/models/imdb:predict", json=TEXT).status_code == 200


def test_a_body_shorter_than_its_content_length_gets_408(repo_copy, start_server):
    s = start_server(repo_copy, env={"MODELYARD_BODY_TIMEOUT_S": "1"})
    sock = connect(s)
    t0 = time.monotonic()
    sock.sendall(
        b"POST /v1/models/imdb:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"instances": ['
    )
    status, headers, body = parse(read_until_closed(sock))
    assert status == 408 and headers["connection"] == "close"
    assert body == {"error": "request body stopped arriving for 1 s"}
    assert 0.9 < time.monotonic() - t0 < 2.5
    assert s.client.post("/v1/models/imdb:predict", json=TEXT).status_code == 200


def test_idle_kept_alive_connections_close_after_the_keepalive_timeout(repo_copy, start_server):
    s = start_server(repo_copy, "--keepalive-timeout-s", "0.5")
    sock = connect(s)
    sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.monotonic()
    raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 200") and 0.4 < time.monotonic() - t0 < 1.5


def test_past_the_connection_cap_a_request_gets_503_json(repo_copy, start_server):
    s = start_server(repo_copy, "--max-connections", "3")
    held = [connect(s) for _ in range(3)]
    r = httpx.post(f"{s.url}/v1/models/imdb:predict", json=TEXT)
    assert r.status_code == 503 and r.headers["connection"] == "close" and r.headers["retry-after"] == "1"
    assert r.json() == {"error": "the server is at its connection limit (3); retry shortly"}
    held.pop().close()
    deadline = time.monotonic() + 5
    while (r := httpx.post(f"{s.url}/v1/models/imdb:predict", json=TEXT)).status_code == 503:
        assert time.monotonic() < deadline, "a freed slot was never given back"
        time.sleep(0.05)
    assert r.status_code == 200
    while "connections refused" not in s.log():  # logged once a second
        assert time.monotonic() < deadline, "refused connections were not logged"
        time.sleep(0.05)


class RetryingClient(threading.Thread):
    """Predicts in a loop on one kept-alive connection, with httpx's connect retries, until the server is gone
    (connection refused after the retries). Anything else that goes wrong is a failure."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self.last_connection_header: str | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.url, transport=httpx.HTTPTransport(retries=2), timeout=10) as c:
            while True:
                try:
                    r = c.post("/v1/models/imdb:predict", json=TEXT)
                except httpx.ConnectError:
                    return
                except httpx.HTTPError as e:
                    self.failures.append(repr(e))
                    continue
                if r.status_code != 200:
                    self.failures.append(f"{r.status_code} {r.text}")
                self.ok += 1
                self.last_connection_header = r.headers.get("connection")


def test_sigterm_exits_within_the_drain_timeout_and_a_retrying_client_loses_nothing(repo_copy, start_server):
    drain_s = 2.0
    s = start_server(repo_copy, "--drain-timeout-s", str(drain_s))
    stalled = connect(s)  # a body that never ends: it would hold the drain open past its timeout
    stalled.sendall(b"POST /v1/models/imdb:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    clients = [RetryingClient(s.url) for _ in range(6)]
    for c in clients:
        c.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    code = s.proc.wait(10)
    exit_s = time.monotonic() - t0
    for c in clients:
        c.join(10)
    assert code == 0
    assert exit_s <= drain_s + 0.5, f"exited {exit_s:.2f} s after SIGTERM"
    assert [c.failures for c in clients] == [[]] * len(clients)
    assert all(c.ok > 0 for c in clients)
    assert [c.last_connection_header for c in clients] == ["close"] * len(clients)  # told to reconnect
    status, _, body = parse(read_until_closed(stalled))
    assert status == 503 and body == {"error": "the server shut down before this request was answered"}


STUCK_SHUTDOWN = """
import sys, time
from uvicorn import Config
from serving.server import ConnectionLimits, Drain, ServingProtocol, ServingServer

async def app(scope, receive, send):  # a lifespan whose shutdown blocks the event loop itself
    while True:
        if (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            time.sleep(30)

config = Config(app, port=int(sys.argv[1]), http=ServingProtocol, ws="none", log_config=None)
ServingServer(config, ConnectionLimits(10, 10, 10), Drain(1.0)).run()
"""


def test_a_shutdown_stuck_past_the_drain_deadline_is_cut_short():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", STUCK_SHUTDOWN, str(port)], cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(10)
    assert time.monotonic() - t0 <= 1.0 + 0.5
    assert code == 1 and b"still running past the drain deadline" in proc.stderr.read()
