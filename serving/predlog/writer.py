"""The writer: a bounded buffer the request path appends references to, and one thread that every
``flush_s`` takes all of it, turns it into rows and inserts them in one transaction on its own connection
(multi-row INSERT statements of :data:`INSERT_ROWS` rows), deletes rows past the retention, and refreshes the
live-quality gauges.

The request path never waits on the database: :meth:`PredictionLog.record` is a sampling draw and an append;
when the buffer is full the request's rows are dropped and counted
(``modelyard_prediction_log_rows_total{outcome="dropped"}``), and a database that fails costs rows
(``outcome="failed"``), never a request. The writer wakes a few times a second, not per request, so that on a
busy server it takes the interpreter from the event loop in a few long turns instead of thousands of short ones.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import random
import threading
import time

from prometheus_client import Counter, Gauge
from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.exc import SQLAlchemyError

from serving.logs import request_id
from serving.predlog import schema
from serving.predlog.live import LiveQuality
from serving.predlog.rows import COLUMNS, Entry, rows

log = logging.getLogger("serving.predlog")

DAY_S = 86400.0
RETENTION_EVERY_S = 3600.0
INSERT_ROWS = 100
"""Rows per INSERT statement (one multi-row VALUES: the database runs it in one call, so the writer hands the
interpreter back and forth once per statement, not once per row as ``executemany`` does). Always this many, so
that the driver compiles the statement once and reuses it (a statement of another length is compiled again: for
hundreds of rows that costs about as much as inserting them); the remainder of a batch goes through
``executemany``."""


class PredictionLog:
    """The prediction log of one server. ``model_config(name)``: the model's serving config (its
    ``log_sample_rate``, else ``sample_rate``, says what share of its requests is kept; its traffic split names
    the arm)."""

    def __init__(
        self,
        engine: Engine,
        metrics_registry,
        model_config,
        sample_rate: float = 1.0,
        retention_days: float = 30.0,
        queue_size: int = 10000,
        flush_s: float = 0.25,
        live_window_s: float = DAY_S,
    ):
        self.engine = engine
        self.model_config = model_config
        self.default_rate = sample_rate
        self.retention_s = retention_days * DAY_S
        self.flush_s = flush_s
        self.capacity = queue_size
        self.buffer: collections.deque[Entry] = collections.deque()
        ph = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        values = f"({', '.join([ph] * len(COLUMNS))})"
        into = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES "
        self._insert_one, self._insert_many = into + values, into + ", ".join([values] * INSERT_ROWS)
        self._conn: Connection | None = None
        """The writer thread's own connection, kept between batches (checking one out of the pool pings the
        database each time); dropped when a batch fails, so that the next one reconnects."""
        self.rows_total = Counter(
            "modelyard_prediction_log_rows_total",
            "Prediction log rows by model and outcome: written, dropped (the writer's queue "
            "was full), failed (the database refused them)",
            ["model", "outcome"],
            registry=metrics_registry,
        )
        self.queue_depth = Gauge(
            "modelyard_prediction_log_queue_depth", "Requests waiting for the writer thread", registry=metrics_registry
        )
        self.queue_depth.set_function(lambda: len(self.buffer))
        self._dropped = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._last_retention = float("-inf")
        self.live = LiveQuality(metrics_registry, live_window_s)

    def start(self) -> None:
        self._thread.start()

    # ------------------------------------------------------------ the request path
    def record(self, servable, version, label, decoded, y, latency_s: float) -> None:
        """Hand one answered request to the writer, if it is sampled and the buffer has room. ``version`` and
        ``label`` are what the request named (the arm: a version, a label, else the split or the latest)."""
        cfg = self.model_config(servable.name)
        rate = self.default_rate if cfg.log_sample_rate is None else cfg.log_sample_rate
        if rate < 1.0 and (rate <= 0.0 or random.random() >= rate):
            return
        arm = (
            "version"
            if version is not None
            else f"label:{label}"
            if label is not None
            else "split"
            if cfg.traffic
            else "latest"
        )
        self._put(Entry(request_id.get() or "", time.time(), servable, arm, decoded.x, decoded.texts, y, latency_s))

    def record_shadow(self, shadow, y, latency_s: float) -> None:
        """The shadow candidate's answer to a mirrored request, whenever the model is logged at all (its input
        is on the primary's row, when that was sampled; the report pairs the two by request id)."""
        cfg = self.model_config(shadow.name)
        if (self.default_rate if cfg.log_sample_rate is None else cfg.log_sample_rate) > 0.0:
            self._put(Entry(request_id.get() or "", time.time(), shadow, "shadow", None, None, y, latency_s))

    def _put(self, e: Entry) -> None:
        if len(self.buffer) < self.capacity:
            self.buffer.append(e)  # deque appends are atomic: no lock on the request path
            return
        name = e.servable.name
        c = self._dropped.get(name)
        if c is None:
            c = self._dropped[name] = self.rows_total.labels(name, "dropped")
        c.inc(len(e.y))

    # ------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.flush_s)
            self._drain()
            self._maintain()
            if stopping:
                return

    def _drain(self) -> None:
        buf = self.buffer
        while buf:
            entries = [buf.popleft() for _ in range(len(buf))]
            self._write(entries)

    def _write(self, entries: list[Entry]) -> None:
        try:
            out, per_model = rows(entries)
        except Exception:  # noqa: BLE001 - an odd answer must not stop the log
            log.exception("prediction log: requests could not be turned into rows; they are lost")
            return
        try:
            self._insert(out)
        except SQLAlchemyError as e:
            log.error("prediction log: insert failed; rows lost", extra={"rows": len(out), "reason": str(e)[:500]})
            self._disconnect()
            outcome = "failed"
        else:
            outcome = "written"
        for model, n in per_model.items():
            self.rows_total.labels(model, outcome).inc(n)

    def _insert(self, out: list[tuple]) -> None:
        """``out`` in one transaction on the writer's connection."""
        if self._conn is None:
            self._conn = self.engine.connect()
        full = len(out) - len(out) % INSERT_ROWS
        with self._conn.begin():
            for i in range(0, full, INSERT_ROWS):
                self._conn.exec_driver_sql(
                    self._insert_many, tuple(itertools.chain.from_iterable(out[i : i + INSERT_ROWS]))
                )
            if full < len(out):
                self._conn.exec_driver_sql(self._insert_one, out[full:])

    def _disconnect(self) -> None:
        """Forget the writer's connection after a failure (the database may have gone: it is not reused)."""
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.invalidate()
            self._conn = None

    def _maintain(self) -> None:
        now = time.monotonic()
        if now - self._last_retention >= RETENTION_EVERY_S:
            self._last_retention = now
            self.apply_retention()
        if self.live.due():
            try:
                self.live.refresh(self.engine)
            except SQLAlchemyError as e:
                log.error("prediction log: live quality not refreshed", extra={"reason": str(e)[:500]})

    def apply_retention(self, now: float | None = None) -> int:
        """Delete predictions older than the retention, and ground truth no prediction refers to any more."""
        cutoff = (now or time.time()) - self.retention_s
        p, g = schema.predictions, schema.ground_truth
        try:
            with self.engine.begin() as conn:
                n = conn.execute(delete(p).where(p.c.ts < cutoff)).rowcount
                if n:
                    alive = (
                        select(p.c.id)
                        .where(p.c.model == g.c.model, p.c.request_id == g.c.request_id, p.c.instance == g.c.instance)
                        .exists()
                    )
                    conn.execute(delete(g).where(~alive))
        except SQLAlchemyError as e:
            log.error("prediction log: retention delete failed", extra={"reason": str(e)[:500]})
            return 0
        if n:
            log.info("prediction log: rows past the retention deleted", extra={"rows": n})
        return n

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered, then stop the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._conn is not None:
            self._conn.close()
        self.engine.dispose()
