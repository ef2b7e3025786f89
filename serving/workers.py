"""``modelyard serve --workers N``: N server processes on one port, under a supervisor.

Each worker is a whole server (:func:`serving.server.build_server`): its own models, batcher, repository polling,
gRPC server and drain, so hot reload, version policy, labels and traffic split work in every one. They share the
port either with one ``SO_REUSEPORT`` socket each (the kernel hashes connections across them evenly) or with one
socket the supervisor binds and every worker accepts on (``--worker-socket``); README, Scale, has the measurement.

The supervisor starts the workers and waits until each is serving; if one cannot start, it stops the others and
exits 1 with that worker's cause. A worker that dies later is restarted (with a backoff when it keeps dying) and
counted in ``modelyard_worker_restarts_total``. SIGTERM or SIGINT is passed to every worker, which drains as a
single server does; the supervisor exits when they have, within the drain timeout and a margin.

Metrics: every process writes its values into a private directory (prometheus-client's multiprocess mode, set
up here before any worker imports the client), and ``/metrics`` on any worker sums them.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from modelyard.errors import ModelyardError
from modelyard.settings import Settings

log = logging.getLogger("serving.workers")

START_TIMEOUT_S = 120.0
"""How long a worker may take to import, build its app and bind (models load in the background after)."""
EXIT_MARGIN_S = 1.0
"""After the drain timeout, how long the supervisor waits for workers before it kills them."""
BACKOFF_MAX_S = 10.0
STEADY_S = 30.0
"""A worker that served this long before dying is restarted at once; one that dies sooner waits a growing backoff."""


def share_metrics() -> None:
    """prometheus-client's multiprocess mode for this process and the workers it starts: call it before anything
    imports prometheus_client (its value class is chosen at import)."""
    import sys

    assert "prometheus_client" not in sys.modules, "prometheus_client was imported before share_metrics()"
    path = tempfile.mkdtemp(prefix="modelyard-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    atexit.register(shutil.rmtree, path, True)


def listening_socket(settings: Settings, reuse_port: bool, listen: bool = True) -> socket.socket:
    """The HTTP socket, bound; with ``reuse_port``, one of several on the same port. A worker's own socket is
    not listening yet: the kernel spreads connections only over listening sockets, and the server listens once
    its models are loaded, so a restarted worker is given no request it would refuse."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as e:
        sock.close()
        raise ModelyardError(
            f"cannot listen on {settings.host}:{settings.port} (--port, MODELYARD_PORT): {e.strerror}"
        ) from None
    if listen:
        sock.listen(2048)
        sock.set_inheritable(True)
    return sock


def _worker_main(settings: Settings, index: int, conn: Connection, shared: socket.socket | None) -> None:
    """A worker process: the whole single-process server on its socket; says "started" or why not."""
    from serving.logs import setup_logging
    from serving.server import build_server

    setup_logging(settings.log_level)
    logging.getLogger("serving.workers").info("worker starting", extra={"worker": index, "pid": os.getpid()})
    try:
        sock = shared or listening_socket(settings, reuse_port=True, listen=False)
        server = build_server(settings)
        server.on_started = lambda: conn.send(("started", ""))
        server.run(sockets=[sock])
    except BaseException as e:  # noqa: BLE001 - the supervisor reports the cause, then the process exits
        if not isinstance(e, SystemExit):
            conn.send(("failed", f"{type(e).__name__}: {e}"))
        raise


@dataclass
class Worker:
    index: int
    process: multiprocessing.Process
    conn: Connection
    started_at: float = field(default_factory=time.monotonic)
    failures: int = 0
    """Deaths in a row, each soon after a start: sets the restart backoff."""
    restart_at: float | None = None
    """When a dead worker is to be started again (monotonic); None while it runs."""


class Supervisor:
    def __init__(self, settings: Settings, target: Callable = _worker_main):
        """``target(settings, index, conn, shared_socket)`` runs in each worker process (spawned: it must be a
        module-level function) and sends ``("started", "")`` or ``("failed", cause)`` on ``conn``."""
        self.settings = settings
        self.target = target
        self.count = settings.worker_count()
        self.ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads or loops
        self.workers: list[Worker] = []
        self.stopping = False
        self.shared = listening_socket(settings, reuse_port=False) if settings.worker_socket == "shared" else None
        if self.shared is None:  # each worker binds its own: check here that the port is free, for one clear line
            listening_socket(settings, reuse_port=False).close()
        from prometheus_client import Counter

        # no registry: in multiprocess mode the value lives in the metrics directory, which /metrics sums
        self.restarts = Counter(
            "modelyard_worker_restarts_total", "Worker processes that died and were restarted", registry=None
        )

    def run(self) -> int:
        """Start, supervise, drain; the process's exit code."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for i in range(self.count):
            self.workers.append(self._spawn(i))
        failure = self._wait_started()
        if failure:
            log.error("a worker could not start; stopping the others", extra={"cause": failure})
            self._terminate(self.settings.drain_timeout_s)
            raise ModelyardError(failure)
        log.info(
            "workers serving",
            extra={
                "workers": self.count,
                "pids": [w.process.pid for w in self.workers],
                "socket": self.settings.worker_socket,
                "port": self.settings.port,
            },
        )
        while not self.stopping:
            time.sleep(0.2)
            self._restart_dead()
        self._terminate(self.settings.drain_timeout_s)
        return 0

    def _spawn(self, index: int, failures: int = 0) -> Worker:
        parent, child = self.ctx.Pipe(duplex=False)
        p = self.ctx.Process(
            target=self.target,
            args=(self.settings, index, child, self.shared),
            name=f"modelyard-worker-{index}",
            daemon=False,
        )
        p.start()
        child.close()
        return Worker(index, p, parent, failures=failures)

    def _wait_started(self) -> str | None:
        """None when every worker is serving; else the first failure, worded for the user."""
        deadline = time.monotonic() + START_TIMEOUT_S
        waiting = list(self.workers)
        while waiting:
            if self.stopping:
                return None
            for w in list(waiting):
                message = self._message(w)
                if message == ("started", ""):
                    waiting.remove(w)
                elif message is not None or not w.process.is_alive():
                    w.process.join(5)
                    cause = message[1] if message else "see its log lines above"
                    return (
                        f"worker {w.index + 1} of {self.count} failed to start (exit code "
                        f"{w.process.exitcode}): {cause}"
                    )
            if time.monotonic() > deadline:
                return f"a worker did not start within {START_TIMEOUT_S:g} s"
            time.sleep(0.05)
        return None

    @staticmethod
    def _message(w: Worker) -> tuple[str, str] | None:
        try:
            return w.conn.recv() if w.conn.poll() else None
        except (EOFError, OSError):
            return None

    def _restart_dead(self) -> None:
        """Restart each worker that died, once its backoff has passed (counted when it is found dead)."""
        from prometheus_client import multiprocess

        now = time.monotonic()
        for i, w in enumerate(self.workers):
            if w.restart_at is None:
                if w.process.is_alive():
                    continue
                multiprocess.mark_process_dead(w.process.pid)  # its live gauges go; its counters stay in the sums
                w.failures = 0 if now - w.started_at > STEADY_S else w.failures + 1
                w.restart_at = now + min(BACKOFF_MAX_S, 0.5 * (2**w.failures - 1))
                log.error(
                    "worker died; restarting it",
                    extra={
                        "worker": w.index,
                        "pid": w.process.pid,
                        "exit_code": w.process.exitcode,
                        "backoff_s": round(w.restart_at - now, 2),
                    },
                )
                self.restarts.inc()
                w.conn.close()
            if w.restart_at <= now:
                self.workers[i] = self._spawn(w.index, w.failures)

    def _stop(self, signum, frame) -> None:
        self.stopping = True

    def _terminate(self, timeout_s: float) -> None:
        """SIGTERM to every worker (each drains within the drain timeout), then SIGKILL to any still running."""
        for w in self.workers:
            if w.process.is_alive():
                os.kill(w.process.pid, signal.SIGTERM)  # each worker drains as a single server does
        deadline = time.monotonic() + timeout_s + EXIT_MARGIN_S
        for w in self.workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                log.error("worker still running past the drain deadline; killing it", extra={"pid": w.process.pid})
                w.process.kill()
                w.process.join()
        if self.shared is not None:
            self.shared.close()
        log.info("every worker has stopped")
