"""Locust load test of a modelyard server: one FastHttpUser class per model and protocol.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000          # web UI on :8089
    locust -f loadtests/locustfile.py --headless -u 8 -r 4 -t 30s --host http://127.0.0.1:8000
    modelyard loadtest --start-server --duration 30s                          # headless, with a report

Classes (model x protocol), each sending several input shapes of the real test sets:

* ``ImdbTFS`` / ``ReutersTFS``: ``POST /v1/models/{name}:predict`` with raw text instances and
  ``{"ids": [...]}`` instances; ``BostonTFS``: named features ``{"CRIM": .., ...}``.
* ``ImdbV2`` / ``ReutersV2``: ``POST /v2/models/{name}/infer`` with a BYTES ``text`` tensor (and INT64 ids);
  ``BostonV2``: an FP32 ``features`` tensor [N, 13].

Environment (all optional):

* ``MODELYARD_LOAD_MODELS``: models to load, default ``imdb,reuters,boston``.
* ``MODELYARD_LOAD_WEIGHTS``: relative traffic per model, e.g. ``imdb=3,reuters=2,boston=1`` (default 1 each).
* ``MODELYARD_LOAD_PROTOCOLS``: ``tfs,v2`` (default both); weights as ``tfs=3,v2=1`` also accepted.
* ``MODELYARD_LOAD_BATCH``: instances per request (default 1).
* ``MODELYARD_LOAD_SAMPLES``: test samples per model to cycle through (default 500).
* ``MODELYARD_LOAD_DATA_DIR``: dataset folder (else MODELYARD_DATA_DIR, else ../shared/datasets).
* ``MODELYARD_LOAD_MAX_WORDS``: cut texts to this many words (default 0 = whole documents).
* ``MODELYARD_LOAD_WAIT_MS``: think time between a user's requests (default 0: closed loop, as fast as it can).
* ``MODELYARD_API_KEY``: sent as ``X-API-Key`` when set.

Traffic goes only to loopback hosts (127.0.0.0/8, localhost, [::1]); any other host stops the run.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import sys
from functools import lru_cache
from pathlib import Path

from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtests import payloads  # noqa: E402
from loadtests.hosts import HostError, check_loopback  # noqa: E402

log = logging.getLogger("modelyard.loadtest")


def _weights(var: str, names: tuple[str, ...], default: str) -> dict[str, int]:
    """``a,b`` or ``a=3,b=1`` -> {name: weight}; unlisted names get weight 0."""
    raw = os.environ.get(var, "").strip() or default
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, w = part.partition("=")
        name = name.strip().lower()
        if name not in names:
            raise ValueError(f"{var}: unknown '{name}'; expected some of {', '.join(names)}")
        try:
            out[name] = int(w) if w else 1
        except ValueError:
            raise ValueError(f"{var}: weight of '{name}' must be an integer, got '{w}'") from None
        if out[name] < 0:
            raise ValueError(f"{var}: weight of '{name}' must be >= 0")
    return out


_selected = _weights("MODELYARD_LOAD_MODELS", payloads.MODELS, ",".join(payloads.MODELS))
_weighed = _weights("MODELYARD_LOAD_WEIGHTS", payloads.MODELS, "")
MODEL_WEIGHTS = {m: _weighed.get(m, w) for m, w in _selected.items()}
PROTOCOL_WEIGHTS = _weights("MODELYARD_LOAD_PROTOCOLS", ("tfs", "v2"), "tfs,v2")
BATCH = max(1, int(os.environ.get("MODELYARD_LOAD_BATCH", "1")))
WAIT_S = float(os.environ.get("MODELYARD_LOAD_WAIT_MS", "0")) / 1000.0
HEADERS = {"Content-Type": "application/json"}
if os.environ.get("MODELYARD_API_KEY"):
    HEADERS["X-API-Key"] = os.environ["MODELYARD_API_KEY"]


@events.test_start.add_listener
def _loopback_only(environment, **_kw):
    host = environment.host or ""
    try:
        check_loopback(host)
    except HostError as e:
        log.error("%s", e)
        environment.process_exit_code = 2
        if environment.runner is not None:
            import gevent

            gevent.spawn_later(0, environment.runner.quit)


@lru_cache(maxsize=None)
def _bodies(model: str, build) -> list[bytes]:
    return build(payloads.samples(model), BATCH)


class _ModelUser(FastHttpUser):
    """Cycles through pre-serialised request bodies of one model and protocol, checking every answer."""

    abstract = True
    wait_time = constant(WAIT_S)
    model = ""
    protocol = ""
    # name -> (builder, weight); set by subclasses
    shapes: dict = {}

    def on_start(self):
        try:
            check_loopback(self.host or "")
        except HostError as e:
            log.error("%s", e)
            raise StopUser() from None
        self._bodies = {}
        for shape, (build, _w) in self.shapes.items():
            bodies = _bodies(self.model, build)
            start = random.randrange(len(bodies))  # users start at different samples
            self._bodies[shape] = itertools.cycle(bodies[start:] + bodies[:start])
        self._shape_pool = [k for k, (_b, w) in self.shapes.items() for _ in range(w)]
        self.path = f"/v1/models/{self.model}:predict" if self.protocol == "tfs" else f"/v2/models/{self.model}/infer"

    @task
    def send(self):
        shape = random.choice(self._shape_pool)
        body = next(self._bodies[shape])
        with self.client.post(
            self.path, data=body, headers=HEADERS, name=f"{self.protocol} {self.model} {shape}", catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
                return
            try:
                answer = json.loads(resp.content)
            except (TypeError, ValueError):
                resp.failure("answer is not JSON")
                return
            if self.protocol == "tfs":
                n = len(answer.get("predictions") or [])
            else:
                outs = answer.get("outputs") or []
                n = outs[0]["shape"][0] if outs else 0
            if n != BATCH:
                resp.failure(f"expected {BATCH} predictions, got {n}")
            else:
                resp.success()


def _user(cls_name: str, model: str, protocol: str, shapes: dict) -> type[_ModelUser]:
    weight = MODEL_WEIGHTS.get(model, 0) * PROTOCOL_WEIGHTS.get(protocol, 0)
    cls = type(
        cls_name,
        (_ModelUser,),
        {"model": model, "protocol": protocol, "shapes": shapes, "weight": max(weight, 1), "__module__": __name__},
    )
    cls.abstract = weight == 0  # deselected classes stay defined but Locust skips them
    return cls


P = payloads
ImdbTFS = _user("ImdbTFS", "imdb", "tfs", {"text": (P.tfs_text, 3), "ids": (P.tfs_ids, 1)})
ImdbV2 = _user("ImdbV2", "imdb", "v2", {"text": (P.v2_text, 3), "ids": (P.v2_ids, 1)})
ReutersTFS = _user("ReutersTFS", "reuters", "tfs", {"text": (P.tfs_text, 3), "ids": (P.tfs_ids, 1)})
ReutersV2 = _user("ReutersV2", "reuters", "v2", {"text": (P.v2_text, 3), "ids": (P.v2_ids, 1)})
BostonTFS = _user("BostonTFS", "boston", "tfs", {"named": (P.tfs_named, 1)})
BostonV2 = _user("BostonV2", "boston", "v2", {"features": (P.v2_features, 1)})

if not any(not c.abstract for c in (ImdbTFS, ImdbV2, ReutersTFS, ReutersV2, BostonTFS, BostonV2)):
    raise ValueError("MODELYARD_LOAD_MODELS / MODELYARD_LOAD_PROTOCOLS / weights select no user class")
