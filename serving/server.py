"""uvicorn's server and HTTP protocol, hardened against slow clients and bounded in shutdown.

uvicorn's httptools protocol waits forever for a request head or a body that stops arriving, takes any number
of connections, and on SIGTERM closes idle kept-alive connections at once (a request already on its way there
is reset) while each shutdown stage (HTTP, gRPC grace, batch queues) may take the full drain timeout.
:class:`ServingProtocol` adds per-connection deadlines and a connection cap; :class:`ServingServer` enforces them
and drains within one deadline. Deadlines are checked by a sweep on the server's 0.1 s tick, not with a timer per
request (``call_later`` + ``cancel`` costs about 5 us under uvloop, twice per request); uvicorn's own keep-alive
timer, armed after every answer, is replaced by the same sweep. :func:`respond` writes a whole answer in one write.

Limits, per connection: the request head within ``header_timeout_s`` of its first byte (or of the connection
being opened); no gap longer than ``body_timeout_s`` in a body; ``keepalive_timeout_s`` idle between requests.
Per server: ``max_connections`` open connections, past which each request is answered 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic

import orjson
from uvicorn import Config, Server
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

log = logging.getLogger("serving.server")

DRAIN_IDLE_GRACE_S = 0.25
"""How long, once draining, an idle kept-alive connection stays open: a request that the client sent just before
it saw the drain is answered (with ``Connection: close``) instead of being reset by the close."""
LIFESPAN_SHARE = 0.1
"""Part of the drain timeout kept for the lifespan shutdown (gRPC grace, batch queues) when HTTP uses the rest."""
UNLOAD_SHARE = 0.05
"""Part of the drain timeout the lifespan's gRPC grace leaves to what follows it: cancelling the RPCs still
running, the batch queues and the models' unload."""
HARD_EXIT_MARGIN_S = 0.4
"""Past the drain deadline by this much, the process exits whatever still runs (an inference, a model load)."""
_SWEEP_DURING_DRAIN_S = 0.05


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int


class Drain:
    """The one shutdown deadline, counted from the signal. The HTTP drain, the gRPC grace and the batch queues
    share it, so the process exits within ``timeout_s`` instead of after the sum of each stage's own timeout."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.deadline: float | None = None

    def begin(self) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.timeout_s

    def left(self) -> float:
        """Seconds to the deadline (the whole timeout before the drain has begun)."""
        if self.deadline is None:
            return self.timeout_s
        return max(0.0, self.deadline - time.monotonic())

    def grace(self) -> float:
        """The gRPC server's stop grace (gRPC waits all of it before cancelling what still runs): the time left
        less :data:`UNLOAD_SHARE` of the timeout."""
        return max(0.0, self.left() - UNLOAD_SHARE * self.timeout_s)


class Phase(enum.Enum):
    WAITING = "waiting"
    """For a request's first byte: on a new connection, or on an idle one while draining."""
    IDLE = "idle"
    """Kept alive between requests (``keepalive_timeout_s``); the next request's head deadline runs from its first
    byte."""
    HEAD = "head"
    BODY = "body"


_WAITING, _IDLE, _HEAD, _BODY = Phase.WAITING, Phase.IDLE, Phase.HEAD, Phase.BODY


def cycle_of(send) -> RequestResponseCycle | None:
    """The uvicorn request cycle whose ``send`` the app was given (uvicorn's httptools protocol passes the cycle's
    bound method), for :func:`respond`; None under another server. Taken from ``send``, not put in the scope: the
    scope is the cycle's own, and a reference back would make every request a cycle for the garbage collector."""
    cycle = getattr(send, "__self__", None)
    return cycle if type(cycle) is RequestResponseCycle else None


def respond(cycle, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
    """A whole answer, head and body, in one write to the transport, where uvicorn's ``send`` writes the head and
    the body in two (one system call less per request). ``headers`` are the app's own, lower-case and valid, with
    ``content-length``. False when the answer must go through ``send`` instead: the transport's buffer is full
    (``send`` waits for it to drain) or an answer has begun."""
    if cycle.response_started or cycle.flow.write_paused:
        return False
    cycle.response_started = cycle.response_complete = True
    if cycle.disconnected:
        return True
    close_asked = _CONNECTION_CLOSE in headers
    if close_asked:
        cycle.keep_alive = False
    content = [STATUS_LINE[status]]
    for name, value in (*cycle.default_headers, *headers):
        content += (name, b": ", value, b"\r\n")
    content += (b"\r\n" if cycle.keep_alive or close_asked else b"connection: close\r\n\r\n", body)
    cycle.transport.write(b"".join(content))
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    cycle.on_response()
    return True


_CONNECTION_CLOSE = (b"connection", b"close")


class ServingState(ServerState):
    """uvicorn's state shared by every connection, with the limits, the admitted count and the drain flag."""

    def __init__(self, limits: ConnectionLimits):
        super().__init__()
        self.limits = limits
        self.admitted = 0
        self.refused = 0
        """Connections refused since :meth:`log_refused` last logged them."""
        self.draining = False
        self.over_capacity = _over_capacity_app(limits.max_connections)

    def sweep(self) -> None:
        """Act on every connection whose deadline has passed."""
        now = time.monotonic()
        for connection in [c for c in self.connections if c.deadline is not None and c.deadline <= now]:
            connection.expire(now)

    def log_refused(self) -> None:
        """One line for the connections refused since the last call, not one per connection (under a flood)."""
        if self.refused:
            log.warning(
                "connections refused: the server is at its connection limit",
                extra={"refused": self.refused, "max_connections": self.limits.max_connections},
            )
            self.refused = 0


def _over_capacity_app(limit: int):
    body = orjson.dumps({"error": f"the server is at its connection limit ({limit}); retry shortly"})

    async def over_capacity(scope, receive, send) -> None:
        """The answer to every request on a connection past the cap (the app never sees it)."""
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                    (b"retry-after", b"1"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return over_capacity


class ServingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with request head and body deadlines, the connection cap, and a drain that
    answers with ``Connection: close`` rather than closing under a request already sent."""

    server_state: ServingState

    def __init__(self, config: Config, server_state: ServingState, app_state: dict, _loop=None):
        super().__init__(config, server_state, app_state, _loop)
        self.limits = server_state.limits
        self.admitted = False
        self.phase: Phase | None = None
        self.deadline: float | None = None
        """When the current phase must be over (monotonic); None: no deadline of ours (the app is working, or
        uvicorn's keep-alive timer runs)."""

    # ------------------------------------------------------------ connection
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        state = self.server_state
        if state.admitted < self.limits.max_connections:
            state.admitted += 1
            self.admitted = True
        else:
            state.refused += 1
            self.app = state.over_capacity
        self._expect(Phase.WAITING, self.limits.header_timeout_s)

    def connection_lost(self, exc) -> None:
        if self.admitted:
            self.server_state.admitted -= 1
            self.admitted = False
        self.deadline = None
        super().connection_lost(exc)

    # ------------------------------------------------------------ parser callbacks
    # Called for every request: the base class by name (not super(), which builds an object per call), the
    # deadlines written out rather than through _expect.
    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        if self.phase is not _WAITING:  # else the head's deadline runs from the connection's start, or the drain's
            self.deadline = monotonic() + self.limits.header_timeout_s
        self.phase = _HEAD

    def on_headers_complete(self) -> None:
        HttpToolsProtocol.on_headers_complete(self)
        self.phase = _BODY
        self.deadline = monotonic() + self.limits.body_timeout_s
        if self.server_state.draining and self.cycle is not None:
            self.cycle.keep_alive = False  # the answer says Connection: close: the client reconnects elsewhere

    def on_body(self, body: bytes) -> None:
        HttpToolsProtocol.on_body(self, body)
        self.deadline = monotonic() + self.limits.body_timeout_s

    def on_message_complete(self) -> None:
        HttpToolsProtocol.on_message_complete(self)
        self.phase = self.deadline = None

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive deadline swept instead of a timer armed per answer."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self.phase is None:  # else the next request has begun, under its own deadline
            self.phase = _IDLE
            self.deadline = monotonic() + self.timeout_keep_alive

    # ------------------------------------------------------------ deadlines
    def _expect(self, phase: Phase, timeout_s: float) -> None:
        self.phase = phase
        self.deadline = time.monotonic() + timeout_s

    def expire(self, now: float) -> None:
        """The current phase's deadline has passed (called by :meth:`ServingState.sweep`)."""
        if self.phase is Phase.WAITING or self.phase is Phase.IDLE:
            self.deadline = None
            self.transport.close()
        elif self.phase is Phase.HEAD:
            self._close_with(408, f"request head not received within {self.limits.header_timeout_s:g} s")
        elif self.flow.read_paused:  # BODY, but the server stopped reading it (the app is behind): not a slow client
            self.deadline = now + self.limits.body_timeout_s
        else:
            self._close_with(408, f"request body stopped arriving for {self.limits.body_timeout_s:g} s")

    def _close_with(self, status: int, message: str) -> None:
        """Answer ``status`` if nothing has been answered to the request at hand yet, then close."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            answerable = not cycle.response_started and self.phase is not Phase.HEAD  # HEAD: a pipelined request
            cycle.disconnected = True  # the app's receive() says http.disconnect, its send() is dropped
            cycle.message_event.set()
        else:  # a new request's head; not a body the app already answered without reading
            answerable = self.phase is Phase.HEAD
        if answerable:
            self._write_error(status, message)
        self.phase = self.deadline = None
        self.transport.close()

    def _write_error(self, status: int, message: str) -> None:
        """A JSON error written straight to the transport: no ASGI app runs for it."""
        body = orjson.dumps({"error": message})
        head = [
            STATUS_LINE[status],
            *(b"%s: %s\r\n" % h for h in self.server_state.default_headers),
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body),
        ]
        self.transport.write(b"".join(head) + body)

    # ------------------------------------------------------------ drain
    def shutdown(self) -> None:
        """Drain: a request in progress is answered with ``Connection: close``; an idle or half-received one keeps
        the connection open for at most :data:`DRAIN_IDLE_GRACE_S`, so that a request already on its way is
        answered rather than reset."""
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            return
        deadline = time.monotonic() + DRAIN_IDLE_GRACE_S
        if self.phase is not Phase.HEAD:
            self.phase = Phase.WAITING
        self.deadline = deadline if self.deadline is None else min(self.deadline, deadline)

    def abort(self) -> None:
        """The drain's time is up: a request not yet answered gets a 503, and the connection closes."""
        self._close_with(503, "the server shut down before this request was answered")


class ServingServer(Server):
    """uvicorn's server with :class:`ServingState`, deadline sweeps on each tick, and a shutdown bounded by
    :class:`Drain`: stop accepting, let every connection finish (:meth:`ServingProtocol.shutdown`), answer 503 to
    what is left when HTTP's share of the time is up, run the lifespan shutdown in the rest. SIGTERM exits 0
    after the drain instead of re-raising the signal."""

    server_state: ServingState

    def __init__(self, config: Config, limits: ConnectionLimits, drain: Drain):
        super().__init__(config)
        self.server_state = ServingState(limits)
        self.drain = drain

    on_started: Callable[[], None] | None = None
    """Called once the server listens (a worker tells its supervisor, :mod:`serving.workers`)."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started and self.on_started is not None:
            self.on_started()

    def handle_exit(self, sig, frame) -> None:
        self.drain.begin()  # the deadline counts from the signal, not from the next tick
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self):
        with super().capture_signals():
            yield
            self._captured_signals.clear()

    async def on_tick(self, counter: int) -> bool:
        """Every 0.1 s: deadlines; every second: refused connections."""
        self.server_state.sweep()
        if counter % 10 == 0:
            self.server_state.log_refused()
        return await super().on_tick(counter)

    async def shutdown(self, sockets=None) -> None:
        self.drain.begin()
        self._arm_hard_exit()
        state = self.server_state
        log.info(
            "draining",
            extra={
                "connections": len(state.connections),
                "requests": len(state.tasks),
                "drain_timeout_s": self.drain.timeout_s,
            },
        )
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state.draining = True
        for connection in list(state.connections):
            connection.shutdown()
        if not await self._http_drained(self.drain.left() - LIFESPAN_SHARE * self.drain.timeout_s):
            await self._abort_http()
        if not self.force_exit:
            await self._lifespan_shutdown()

    async def _http_drained(self, budget_s: float) -> bool:
        """Wait, sweeping deadlines, until no connection is left; False when ``budget_s`` runs out first."""
        state = self.server_state
        end = time.monotonic() + budget_s
        while state.connections or state.tasks:
            if time.monotonic() >= end or self.force_exit:
                return False
            await asyncio.sleep(_SWEEP_DURING_DRAIN_S)
            state.sweep()
        return True

    async def _abort_http(self) -> None:
        """503 on every connection; a request whose app was only waiting for its body now sees the disconnect
        and ends by itself, the others (inferring) are cancelled."""
        state = self.server_state
        log.error(
            "drain timeout: answering 503 to the requests still in progress",
            extra={"connections": len(state.connections), "requests": len(state.tasks)},
        )
        for connection in list(state.connections):
            connection.abort()
        if state.tasks:
            _, pending = await asyncio.wait(list(state.tasks), timeout=_SWEEP_DURING_DRAIN_S)
            for task in pending:
                task.cancel()

    async def _lifespan_shutdown(self) -> None:
        try:
            await asyncio.wait_for(self.lifespan.shutdown(), self.drain.left())
        except TimeoutError:
            log.error("the lifespan shutdown (gRPC drain, batch queues) passed the drain deadline")

    def _arm_hard_exit(self) -> None:
        """Whatever blocks the exit past the deadline (a thread still inferring or loading a model, which
        asyncio and the interpreter wait for), the process is gone within :data:`HARD_EXIT_MARGIN_S` of it."""
        timer = threading.Timer(self.drain.left() + HARD_EXIT_MARGIN_S, _hard_exit)
        timer.daemon = True
        timer.start()


def build_server(settings) -> ServingServer:
    """The app on uvicorn with :class:`ServingProtocol`, limits and drain: one process's whole server."""
    from serving.app import create_app

    app = create_app(settings)
    drain = Drain(settings.drain_timeout_s)
    app.app.state.drain = drain  # the lifespan takes its gRPC grace from what is left of the drain
    limits = ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_connections=settings.max_connections,
    )
    kw = {}
    try:
        import uvloop  # noqa: F401

        kw["loop"] = "uvloop"
    except ImportError:
        pass
    # ws="none": no route speaks WebSocket, and every connection must be a ServingProtocol
    config = Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        http=ServingProtocol,
        ws="none",
        timeout_keep_alive=settings.keepalive_timeout_s,
        server_header=False,
        proxy_headers=False,
        **kw,
    )
    return ServingServer(config, limits, drain)


def _hard_exit() -> None:
    log.error("still running past the drain deadline; exiting now")
    logging.shutdown()
    os._exit(1)
