"""BentoML serving the model the way its docs recommend: a ``@bentoml.service`` class with one worker and a
batchable ``@bentoml.api`` (BentoML's adaptive batching). Started with ``bentoml serve``."""

from __future__ import annotations

import os
from typing import Any

import bentoml

from loadtests.bench.apps.common import ROUTE, session, to_input


@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Model:
    def __init__(self) -> None:
        self.sess, self.input_name = session()

    @bentoml.api(
        route=ROUTE,
        batchable=True,
        max_batch_size=int(os.environ.get("MODELYARD_BENCH_MAX_BATCH", "64")),
        max_latency_ms=int(os.environ.get("MODELYARD_BENCH_MAX_LATENCY_MS", "1000")),
    )
    def predict(self, instances: list[Any]) -> list:
        return self.sess.run(None, {self.input_name: to_input(instances)})[0].tolist()
