"""Live quality as Prometheus gauges: accuracy (or MAE) per model, version and variant over the predictions
of a sliding window that have ground truth, refreshed by the writer thread (an aggregate query, never on the
request path). The audit report (``modelyard audit report``) gives the same figures with their intervals."""

from __future__ import annotations

import time

from prometheus_client import Gauge
from sqlalchemy import Engine, and_, case, func, select

from serving.predlog import schema

REFRESH_S = 15.0


class LiveQuality:
    def __init__(self, metrics_registry, window_s: float):
        self.window_s = window_s
        labels = ["model", "version", "variant", "role"]
        self.accuracy = Gauge("modelyard_live_accuracy", "Share of logged predictions of the sliding window "
                              "(MODELYARD_PREDICTION_LOG_LIVE_WINDOW_S) that match their ground truth; role: primary "
                              "(answered) or shadow", labels, registry=metrics_registry)
        self.mae = Gauge("modelyard_live_mae", "Mean absolute error of logged predictions of the sliding window "
                         "against their ground truth (regression)", labels, registry=metrics_registry)
        self.labelled = Gauge("modelyard_live_labelled_predictions", "Logged predictions of the sliding window "
                              "that have ground truth", labels, registry=metrics_registry)
        self._last = float("-inf")

    def due(self) -> bool:
        return time.monotonic() - self._last >= REFRESH_S

    def refresh(self, engine: Engine, now: float | None = None) -> None:
        """Recompute every gauge from the log (series with no labelled prediction left are removed)."""
        self._last = time.monotonic()
        p, g = schema.predictions, schema.ground_truth
        role = case((p.c.arm == "shadow", "shadow"), else_="primary")
        q = (select(p.c.model, p.c.version, p.c.variant, role, func.count(),
                    func.sum(case((p.c.label == g.c.label, 1), else_=0)), func.avg(func.abs(p.c.value - g.c.value)))
             .select_from(p.join(g, and_(g.c.model == p.c.model, g.c.request_id == p.c.request_id,
                                         g.c.instance == p.c.instance)))
             .where(p.c.ts >= (now or time.time()) - self.window_s)
             .group_by(p.c.model, p.c.version, p.c.variant, role))
        with engine.connect() as conn:
            rows = conn.execute(q).all()
        for gauge in (self.accuracy, self.mae, self.labelled):
            gauge.clear()
        for model, version, variant, r, n, right, mae in rows:
            lbl = (model, str(version), variant, r)
            self.labelled.labels(*lbl).set(n)
            if mae is not None:
                self.mae.labels(*lbl).set(float(mae))
            else:
                self.accuracy.labels(*lbl).set(int(right) / n)
