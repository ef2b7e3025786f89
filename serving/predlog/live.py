"""Live quality as Prometheus gauges: accuracy (or MAE) per model, version and variant over the logged
predictions whose ground truth arrived in a sliding window, refreshed by the writer thread (never on the request
path). The window is on the ground truth's time so that the work starts from the few labelled rows (an index on
``ground_truth.ts``) and looks each prediction up by its request id: it grows with the labels, not with the
predictions the log holds. The audit report (``modelyard audit report``) gives the same figures with their
intervals."""

from __future__ import annotations

import time

from prometheus_client import Gauge
from sqlalchemy import Engine, select, tuple_

from serving.predlog import schema

REFRESH_S = 15.0
CHUNK = 500
"""Predictions looked up per query, by (model, request id, instance)."""


class LiveQuality:
    def __init__(self, metrics_registry, window_s: float):
        self.window_s = window_s
        labels = ["model", "version", "variant", "role"]
        self.accuracy = Gauge(
            "modelyard_live_accuracy",
            "Share of logged predictions that match the ground truth "
            "received in the sliding window (MODELYARD_PREDICTION_LOG_LIVE_WINDOW_S); role: "
            "primary (answered) or shadow",
            labels,
            registry=metrics_registry,
        )
        self.mae = Gauge(
            "modelyard_live_mae",
            "Mean absolute error of logged predictions against the ground truth "
            "received in the sliding window (regression)",
            labels,
            registry=metrics_registry,
        )
        self.labelled = Gauge(
            "modelyard_live_labelled_predictions",
            "Logged predictions whose ground truth arrived in the sliding window",
            labels,
            registry=metrics_registry,
        )
        self._last = float("-inf")

    def due(self) -> bool:
        return time.monotonic() - self._last >= REFRESH_S

    def refresh(self, engine: Engine, now: float | None = None) -> None:
        """Recompute every gauge from the log (series with no labelled prediction left are removed)."""
        self._last = time.monotonic()
        p, g = schema.predictions, schema.ground_truth
        cutoff = (now or time.time()) - self.window_s
        figures: dict[tuple, list] = {}
        with engine.connect() as conn:
            truth = {
                (m, r, i): (lab, val)
                for m, r, i, lab, val in conn.execute(
                    select(g.c.model, g.c.request_id, g.c.instance, g.c.label, g.c.value).where(g.c.ts >= cutoff)
                )
            }
            keys = list(truth)
            for k in range(0, len(keys), CHUNK):
                q = select(
                    p.c.model, p.c.request_id, p.c.instance, p.c.version, p.c.variant, p.c.arm, p.c.label, p.c.value
                ).where(tuple_(p.c.model, p.c.request_id, p.c.instance).in_(keys[k : k + CHUNK]))
                for model, rid, inst, version, variant, arm, label, value in conn.execute(q):
                    t_label, t_value = truth[(model, rid, inst)]
                    f = figures.setdefault(
                        (model, str(version), variant, "shadow" if arm == "shadow" else "primary"), [0, 0, 0.0, 0]
                    )
                    f[0] += 1
                    if value is not None and t_value is not None:
                        f[2] += abs(value - t_value)
                        f[3] += 1
                    else:
                        f[1] += label == t_label
        for gauge in (self.accuracy, self.mae, self.labelled):
            gauge.clear()
        for lbl, (n, right, abs_sum, n_values) in figures.items():
            self.labelled.labels(*lbl).set(n)
            if n_values:
                self.mae.labels(*lbl).set(abs_sum / n_values)
            else:
                self.accuracy.labels(*lbl).set(right / n)
