"""The writer: a bounded queue the request path puts references into, and one thread that turns them into
rows and inserts them in batches, deletes rows past the retention, and refreshes the live-quality gauges.

The request path never waits on the database: :meth:`PredictionLog.record` is a sampling draw and a
``put_nowait``; when the queue is full the request's rows are dropped and counted
(``modelyard_prediction_log_rows_total{outcome="dropped"}``), and a database that fails costs rows
(``outcome="failed"``), never a request.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time

from prometheus_client import Counter, Gauge
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from serving.logs import request_id
from serving.predlog import schema
from serving.predlog.live import LiveQuality
from serving.predlog.rows import Entry, rows

log = logging.getLogger("serving.predlog")

DAY_S = 86400.0
RETENTION_EVERY_S = 3600.0


class PredictionLog:
    """The prediction log of one server. ``model_config(name)``: the model's serving config (its
    ``log_sample_rate``, else ``sample_rate``, says what share of its requests is kept; its traffic split names
    the arm)."""

    def __init__(self, engine: Engine, metrics_registry, model_config, sample_rate: float = 1.0,
                 retention_days: float = 30.0, queue_size: int = 10000, batch_rows: int = 1000,
                 flush_s: float = 0.2, live_window_s: float = DAY_S):
        self.engine = engine
        self.model_config = model_config
        self.default_rate = sample_rate
        self.retention_s = retention_days * DAY_S
        self.batch_rows = batch_rows
        self.flush_s = flush_s
        self.queue: queue.Queue[Entry | None] = queue.Queue(queue_size)
        self.rows_total = Counter("modelyard_prediction_log_rows_total",
                                  "Prediction log rows by model and outcome: written, dropped (the writer's queue "
                                  "was full), failed (the database refused them)", ["model", "outcome"],
                                  registry=metrics_registry)
        self.queue_depth = Gauge("modelyard_prediction_log_queue_depth", "Requests waiting for the writer thread",
                                 registry=metrics_registry)
        self.queue_depth.set_function(self.queue.qsize)
        self._dropped = {}
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._last_retention = float("-inf")
        self.live = LiveQuality(metrics_registry, live_window_s)

    def start(self) -> None:
        self._thread.start()

    # ------------------------------------------------------------ the request path
    def record(self, servable, version, label, decoded, y, latency_s: float) -> None:
        """Hand one answered request to the writer, if it is sampled and the queue has room. ``version`` and
        ``label`` are what the request named (the arm: a version, a label, else the split or the latest)."""
        cfg = self.model_config(servable.name)
        rate = self.default_rate if cfg.log_sample_rate is None else cfg.log_sample_rate
        if rate < 1.0 and (rate <= 0.0 or random.random() >= rate):
            return
        arm = "version" if version is not None else f"label:{label}" if label is not None else \
            "split" if cfg.traffic else "latest"
        self._put(Entry(request_id.get() or "", time.time(), servable, arm, decoded.x, decoded.texts, y, latency_s))

    def record_shadow(self, shadow, y, latency_s: float) -> None:
        """The shadow candidate's answer to a mirrored request, whenever the model is logged at all (its input
        is on the primary's row, when that was sampled; the report pairs the two by request id)."""
        cfg = self.model_config(shadow.name)
        if (self.default_rate if cfg.log_sample_rate is None else cfg.log_sample_rate) > 0.0:
            self._put(Entry(request_id.get() or "", time.time(), shadow, "shadow", None, None, y, latency_s))

    def _put(self, e: Entry) -> None:
        try:
            self.queue.put_nowait(e)
        except queue.Full:
            name = e.servable.name
            c = self._dropped.get(name)
            if c is None:
                c = self._dropped[name] = self.rows_total.labels(name, "dropped")
            c.inc(len(e.y))

    # ------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        while True:
            batch = self._take()
            stop = batch and batch[-1] is None
            entries = [e for e in batch if e is not None]
            if entries:
                self._write(entries)
            for _ in batch:
                self.queue.task_done()
            self._maintain()
            if stop:
                return

    def _take(self) -> list[Entry | None]:
        """The next batch: what arrives within ``flush_s`` of the first entry, at most ``batch_rows`` entries."""
        try:
            first = self.queue.get(timeout=self.flush_s)
        except queue.Empty:
            return []
        batch = [first]
        while first is not None and len(batch) < self.batch_rows:
            try:
                e = self.queue.get_nowait()
            except queue.Empty:
                break
            batch.append(e)
            if e is None:
                break
        return batch

    def _write(self, entries: list[Entry]) -> None:
        out: list[dict] = []
        for e in entries:
            try:
                out += rows(e)
            except Exception:  # noqa: BLE001 - one odd answer must not stop the log
                log.exception("prediction log: a request could not be turned into rows")
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(schema.predictions), out)
        except SQLAlchemyError as e:
            log.error("prediction log: insert failed; rows lost", extra={"rows": len(out), "reason": str(e)[:500]})
            self._count(out, "failed")
            return
        self._count(out, "written")

    def _count(self, out: list[dict], outcome: str) -> None:
        per_model: dict[str, int] = {}
        for r in out:
            per_model[r["model"]] = per_model.get(r["model"], 0) + 1
        for model, n in per_model.items():
            self.rows_total.labels(model, outcome).inc(n)

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
                    alive = select(p.c.id).where(p.c.model == g.c.model, p.c.request_id == g.c.request_id,
                                                 p.c.instance == g.c.instance).exists()
                    conn.execute(delete(g).where(~alive))
        except SQLAlchemyError as e:
            log.error("prediction log: retention delete failed", extra={"reason": str(e)[:500]})
            return 0
        if n:
            log.info("prediction log: rows past the retention deleted", extra={"rows": n})
        return n

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread.is_alive():
            deadline = time.monotonic() + timeout
            while True:
                try:
                    self.queue.put(None, timeout=0.1)
                    break
                except queue.Full:
                    if time.monotonic() > deadline:
                        break
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self.engine.dispose()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every entry queued before the call is written (for tests and the feedback route)."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
