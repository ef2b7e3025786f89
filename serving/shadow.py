"""Shadow comparison: a request answered by the primary is mirrored, off the request path, to the shadow candidate
(:func:`serving.routing.shadow_of`); how often the two agree is a metric, the candidate's answers go to the
prediction log, and the candidate never affects an answer."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from serving.metrics import Metrics
from serving.servables import Servable


class Shadow:
    def __init__(self, metrics: Metrics, predlog=None):
        self.metrics = metrics
        self.predlog = predlog
        """The prediction log (:mod:`serving.predlog`), or None."""
        self._tasks: set[asyncio.Task] = set()

    def mirror(self, primary: Servable, shadow: Servable, x: np.ndarray, y: np.ndarray) -> None:
        """Run ``x`` on the shadow too, in a task of its own; ``y``: the primary's answer."""
        task = asyncio.get_running_loop().create_task(self._compare(primary, shadow, x, y))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _compare(self, primary: Servable, shadow: Servable, x: np.ndarray, y: np.ndarray) -> None:
        t0 = time.perf_counter()
        try:
            y2 = await shadow.batcher.submit(x)
        except Exception:  # noqa: BLE001 - the candidate never affects answers
            self.metrics.shadow_errors.labels(primary.name, shadow.key).inc()
            return
        if self.predlog is not None:
            self.predlog.record_shadow(shadow, y2, time.perf_counter() - t0)
        agree = primary.codec.task.agree(y, y2)
        self.metrics.observe_shadow(primary.name, primary.key, shadow.key, int(agree.sum()), len(agree))
