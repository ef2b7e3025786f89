"""The one handler layer, as MLServer's ``DataPlane``: every transport (the REST fast path, the FastAPI routes,
the gRPC servicer) calls it, so a request is routed, decoded, batched, run, mirrored, counted and encoded the
same way whichever protocol carried it.

An inference is :meth:`DataPlane.predict` with two hooks, ``decode(codec) -> Decoded`` and
``encode(servable, y) -> answer``, which the protocol supplies: resolve the model, version or label (and the
traffic split) -> decode with that version's codec -> batch and run (retrying once if the version was unloaded
meanwhile) -> mirror to the shadow -> metrics and statistics -> encode.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import TypeVar

import numpy as np

import modelyard
from modelyard.gpu import gpu_facts
from modelyard.settings import Settings
from serving.auth import PROTECTED, ApiKeys
from serving.batching import Retired
from serving.codecs import Decoded, ModelCodec
from serving.errors import BadRequest, NotFound, ServingError
from serving.logs import new_request_id, request_id
from serving.metrics import Metrics
from serving.predlog import open_log
from serving.registry import Registry
from serving.servables import Servable
from serving.shadow import Shadow
from serving.runtimes import RUNTIMES
from serving.statistics import Statistics
from serving.tensors import InferRequest, InferResponse

log = logging.getLogger("serving.dataplane")

TRITON_TYPE = {"FP32": "TYPE_FP32", "INT64": "TYPE_INT64", "BYTES": "TYPE_STRING"}
EXTENSIONS = [
    "binary_tensor_data",
    "model_configuration",
    "statistics",
    "model_repository",
    "model_repository(unload_dependents)",
]
"""Triton extensions this server implements (``GET /v2``), so that clients that check for them find them."""

GAUGE_PERIOD_S = 1.0
"""How often each worker refreshes its gauges when there are several (one process: at scrape)."""

Answer = TypeVar("Answer")
Request = TypeVar("Request")
Routed = tuple[Servable, Servable | None]
"""The servable that answers a request and the shadow it is mirrored to (or None)."""


class DataPlane:
    def __init__(self, settings: Settings, metrics: Metrics | None = None):
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.stats = Statistics()
        self.registry = Registry(settings, self.metrics, self.stats)
        self.max_instances = settings.max_instances
        self.keys = ApiKeys(settings)
        self._keyed = bool(self.keys)
        self._poller: asyncio.Task | None = None
        self._sampler: asyncio.Task | None = None
        self.predlog = open_log(settings, self.registry, self.metrics.registry)
        self.shadow = Shadow(self.metrics, self.predlog)
        self._ok_series: dict[tuple, tuple] = {}
        """(model, version, variant, route, protocol) -> its answers' request counter and latency series, and
        the version's statistics record."""

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Load what the repository holds, then keep polling. One server loads in the background (readiness
        says when); a worker of several loads first, since it listens only after (:mod:`serving.workers`)."""
        self.metrics.ready.set(0)
        if self.predlog is not None:
            self.predlog.start()
        if self.settings.worker_count() > 1:
            await self._initial_load()
            self._poller = asyncio.create_task(self.registry.run_polling(), name="poll-repository")
        else:
            self._poller = asyncio.create_task(self._load_then_poll(), name="poll-repository")
        if self.metrics.multiprocess:
            self._sampler = asyncio.create_task(self._sample_gauges_forever(), name="sample-gauges")

    async def _sample_gauges_forever(self) -> None:
        """With workers, each process refreshes its gauges every second: a scrape reaches one of them."""
        while True:
            await asyncio.sleep(GAUGE_PERIOD_S)
            self.sample_gauges()

    def sample_gauges(self) -> None:
        """The gauges read at scrape: requests in flight, queue depths, GPU memory, training text statistics."""
        m = self.metrics
        m.sample_in_flight()
        servables = [s for st in self.registry.models.values() for vs in st.versions.values() for s in vs.values()]
        for facts in filter(
            None, map(gpu_facts, sorted({s.runtime.cuda.device_id for s in servables if s.runtime.device == "cuda"}))
        ):
            lbl = (str(facts["index"]), facts["name"])
            m.gpu_memory_used.labels(*lbl).set(facts["memory_used_bytes"])
            m.gpu_memory_total.labels(*lbl).set(facts["memory_total_bytes"])
        for st in self.registry.models.values():
            loaded = [s for vs in st.versions.values() for s in vs.values()]
            m.queue_depth.labels(st.name).set(sum(s.batcher.pending for s in loaded if s.batcher))
            pre = loaded[0].manifest.preprocessing if loaded else None
            if pre is not None and pre.kind == "multi_hot_text":
                if pre.train_mean_tokens is not None:
                    m.train_text_tokens.labels(st.name).set(pre.train_mean_tokens)
                if pre.train_oov_rate is not None:
                    m.train_oov.labels(st.name).set(pre.train_oov_rate)

    async def _load_then_poll(self) -> None:
        await self._initial_load()
        await self.registry.run_polling()

    async def _initial_load(self) -> None:
        with contextlib.suppress(Exception):
            await self.registry.poll()
        log.info(
            "initial load finished",
            extra={"ready": self.ready(), "models": {n: sorted(st.versions) for n, st in self.registry.models.items()}},
        )
        gc.freeze()  # what startup built (models, routes, imports) is never garbage: keep collections from rescanning it

    async def stop(self) -> None:
        """Stop polling and drain every batch queue."""
        for task in (self._poller, self._sampler):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.registry.close()
        if self.predlog is not None:
            await asyncio.to_thread(self.predlog.close)
        log.info("server stopped; every queued request was answered")

    # ------------------------------------------------------------ health, auth
    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.registry.ready()

    def model_ready(self, name: str, version: str | None = None) -> bool:
        st = self.registry.state(name)
        if version:
            self.registry.resolve(name, version)
        return bool(st.versions)

    def authorize(self, headers: Mapping[str, str], scope: str = PROTECTED) -> None:
        """The API key from ``X-API-Key`` or ``Authorization: Bearer`` (headers or gRPC metadata, lower-case),
        when the scope needs one (see :mod:`serving.auth`)."""
        self.keys.check(headers, scope)

    def admit(
        self,
        name: str,
        version: str | None,
        label: str | None,
        route: str,
        protocol: str,
        headers: Mapping[str, str] | None = None,
    ) -> Routed:
        """Admission control before any work: the API key (when ``headers`` are given), the model, and room in
        its queue: a request for a model version whose queue is full is refused (503 with Retry-After) before its
        body is read or decoded, so that refusing costs little under overload. Refusals are counted. Returns the
        routing (primary, shadow) for :meth:`predict`, so that a request is routed once."""
        try:
            if headers is not None and self._keyed:
                self.keys.check(headers)
            routed = self.registry.resolve(name, version, label)
            routed[0].batcher.check_capacity()
        except ServingError as e:
            self.refused(name, route, protocol, e.status)
            raise
        return routed

    # ------------------------------------------------------------ inference
    async def predict(
        self,
        name: str,
        version: str | int | None,
        label: str | None,
        route: str,
        protocol: str,
        decode: Callable[[ModelCodec, Request, int], Decoded],
        encode: Callable[[Servable, np.ndarray, Request], Answer],
        request: Request,
        routed: Routed | None = None,
    ) -> Answer:
        """One inference through the protocol's hooks, ``decode(codec, request, max_instances)`` and
        ``encode(servable, y, request)`` (module-level functions: nothing is built per request to carry the
        request to them); every outcome is counted. ``routed``: what :meth:`admit` chose, else the request is
        routed here."""
        t0 = perf_counter()
        primary = None
        try:
            primary, shadow = routed or self.registry.resolve(name, version, label)
            decoded = decode(primary.codec, request, self.max_instances)
            t1 = perf_counter()
            try:
                y = await primary.batcher.submit(decoded.x)
            except Retired:  # the version was unloaded between routing and queueing: route again
                primary, shadow = self.registry.resolve(name, version, label)
                y = await primary.batcher.submit(decoded.x)
            if shadow is not None:
                self.shadow.mirror(primary, shadow, decoded.x, y)
            t2 = perf_counter()
            self.metrics.observe_inputs(name, primary.codec, decoded)
            self.metrics.observe_outputs(name, primary.codec, y)
            answer = encode(primary, y, request)
        except ServingError as e:
            self._count(name, primary, route, protocol, e.status, t0)
            raise
        t3 = perf_counter()
        self._answered(primary, route, protocol, t3 - t0, t1 - t0, t3 - t2, t3)
        if self.predlog is not None:
            self.predlog.record(primary, version, label, decoded, y, t3 - t0)
        return answer

    def refused(self, name: str, route: str, protocol: str, status: int) -> None:
        """Count a request its protocol refused before :meth:`predict` (malformed body, wrong API key)."""
        self._count(name, None, route, protocol, status, time.perf_counter())

    def _count(self, name: str, s: Servable | None, route: str, protocol: str, status: int, t0: float) -> None:
        known = name in self.registry.models
        model = name if known else "_unknown"
        m = self.metrics
        m.child(
            m.requests, model, str(s.version) if s else "", s.variant_name if s else "", route, protocol, str(status)
        ).inc()
        if known:
            m.child(m.request_latency, model, route, protocol).observe(time.perf_counter() - t0)
            if status != 200 and s is not None:
                self.stats.failure(name, s.version, time.perf_counter() - t0)

    def _answered(
        self, s: Servable, route: str, protocol: str, total: float, decode: float, encode: float, end: float
    ) -> None:
        """:meth:`_count` and the statistics for a request answered (200) at ``end``, with the two series and
        the record it adds to looked up once per (version, variant, route, protocol), not labelled per request."""
        if s.name not in self.registry.models:  # unloaded meanwhile: counted as unknown
            self._count(s.name, s, route, protocol, 200, end - total)
            return self.stats.record(s.name, s.version).answered(total, decode, encode, end)
        key = (s.name, s.version, s.variant_name, route, protocol)
        series = self._ok_series.get(key)
        if series is None:
            m = self.metrics
            series = self._ok_series[key] = (
                m.child(m.requests, s.name, str(s.version), s.variant_name, route, protocol, "200"),
                m.child(m.request_latency, s.name, route, protocol),
                self.stats.record(s.name, s.version),
            )
        requests, latency, record = series
        requests.inc()
        latency.observe(total)
        record.answered(total, decode, encode, end)

    async def infer(
        self, req: InferRequest, name: str, version: str | None, protocol: str, routed: Routed | None = None
    ) -> InferResponse:
        """A V2 inference (REST JSON or binary, gRPC): the request's tensors in, the model's tensors out."""
        if req.id and self.predlog is not None:  # the log keys on the id the answer carries
            request_id.set(req.id)
        top_k = req.parameters.get("top_k")
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise BadRequest("parameters.top_k: must be a positive integer")
        return await self.predict(
            name, version or None, None, "v2_infer", protocol, _decode_v2, _encode_v2, req, routed
        )

    # ------------------------------------------------------------ metadata
    def server_metadata(self) -> dict:
        return {"name": "modelyard", "version": modelyard.__version__, "extensions": EXTENSIONS}

    def servable(self, name: str, version: str | None = None, label: str | None = None) -> Servable:
        """The version a metadata request is about: the one named, else the latest loaded."""
        if version or label:
            return self.registry.resolve(name, version, label)[0]
        st = self.registry.state(name)
        return self.registry.servable(st, st.latest() or 0, None)

    def model_metadata(self, name: str, version: str | None = None) -> dict:
        """V2 model metadata: the one canonical input to send, the outputs, and in ``parameters`` the other
        accepted inputs with a line of documentation each, and what is served."""
        s = self.servable(name, version)
        inputs, outputs, alternatives = s.codec.v2_metadata()
        return {
            "name": name,
            "versions": [str(v) for v in sorted(self.registry.state(name).versions)],
            "platform": RUNTIMES[s.runtime.name].platform,
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {**alternatives, **self.describe(s)},
        }

    def describe(self, s: Servable) -> dict:
        """What is served for a version: task, labels, variant, runtime and device, validation figures."""
        m = s.manifest
        p = m.preprocessing
        rt = s.runtime
        st = self.registry.models[s.name]
        return {
            "task": m.task,
            "labels": m.labels,
            "variant": s.variant_name,
            "format": s.variant.format,
            **rt.describe(),
            "gpu": gpu_facts(rt.cuda.device_id) if rt.device == "cuda" else None,
            "loaded_versions": sorted(st.versions),
            "variants_in_manifest": {k: v.status for k, v in m.variants.items()},
            "preprocessing": p.kind,
            **({"feature_names": p.feature_names} if p.kind == "tabular" else {"num_words": p.num_words}),
            "test_metrics": m.metrics,
            "labels_config": st.config.labels,
        }

    def version_status(self, name: str, version: str | None = None, label: str | None = None) -> dict:
        """TF Serving's ``model_version_status`` for every known version, or the one named."""
        st = self.registry.state(name)
        if label is not None or version is not None:
            versions = [self.registry.resolve(name, version, label)[0].version]
        else:
            versions = sorted(set(st.versions) | set(st.failed) | st.loading, reverse=True)
        ok = {"error_code": "OK", "error_message": ""}
        out = []
        for v in versions:
            if v in st.versions:
                out.append({"version": str(v), "state": "AVAILABLE", "status": ok})
            elif v in st.loading:
                out.append({"version": str(v), "state": "LOADING", "status": ok})
            else:
                out.append(
                    {
                        "version": str(v),
                        "state": "END",
                        "status": {"error_code": "UNKNOWN", "error_message": st.failed[v][1]},
                    }
                )
        return {"model_version_status": out}

    # ------------------------------------------------------------ Triton extensions
    def model_config(self, name: str, version: str | None = None) -> dict:
        """Triton's model configuration, as far as it describes this server (dims without the batch dimension)."""
        s = self.servable(name, version)
        inputs, outputs, _ = s.codec.v2_metadata()
        cfg = self.registry.model_config(name)
        policy = {"latest": {"num_versions": cfg.num_versions}, "all": {}, "specific": {"versions": cfg.versions}}

        def tensors(specs):
            return [{"name": t["name"], "data_type": TRITON_TYPE[t["datatype"]], "dims": t["shape"][1:]} for t in specs]

        b = s.batcher
        return {
            "name": name,
            "platform": RUNTIMES[s.runtime.name].platform,
            "backend": s.runtime.name,
            "version_policy": {cfg.version_policy: policy[cfg.version_policy]},
            "max_batch_size": b.max_batch_size,
            "input": tensors(inputs),
            "output": tensors(outputs),
            "dynamic_batching": {
                "max_queue_delay_microseconds": int(b.max_delay * 1e6),
                "default_queue_policy": {"max_queue_size": b.max_queue_size},
            },
            "instance_group": [
                {"name": name, "kind": "KIND_GPU" if s.runtime.device == "cuda" else "KIND_CPU", "count": 1}
            ],
            "parameters": {"variant": {"string_value": s.variant_name}},
        }

    def model_statistics(self, name: str | None = None, version: str | None = None) -> dict:
        if name:
            st = self.registry.state(name)
            keys = (
                [(name, self.servable(name, version).version)] if version else [(name, v) for v in sorted(st.versions)]
            )
        else:
            keys = [(n, v) for n, st in sorted(self.registry.models.items()) for v in sorted(st.versions)]
        return {"model_stats": [self.stats.triton(n, v) for n, v in keys]}

    def repository_index(self, ready_only: bool = False) -> list[dict]:
        out = []
        for name in sorted(set(self.registry.repo.model_names()) | set(self.registry.models)):
            st = self.registry.models.get(name)
            rows = []
            for v in sorted(set(st.versions) | set(st.failed) | st.loading) if st else []:
                state, reason = (
                    ("READY", "")
                    if v in st.versions
                    else ("LOADING", "")
                    if v in st.loading
                    else ("UNAVAILABLE", st.failed[v][1])
                )
                rows.append({"name": name, "version": str(v), "state": state, "reason": reason})
            if not rows:
                rows.append(
                    {
                        "name": name,
                        "state": "UNAVAILABLE",
                        "reason": "unloaded" if name in self.registry.unloaded else "no version loaded",
                    }
                )
            out += [r for r in rows if r["state"] == "READY" or not ready_only]
        return out

    async def load_model(self, name: str) -> None:
        if name not in self.registry.repo.model_names():
            raise NotFound(f"no model '{name}' in the model repository")
        await self.registry.load(name)
        st = self.registry.models[name]
        if not st.versions:
            reasons = "; ".join(f"version {v}: {m}" for v, (_, m) in sorted(st.failed.items()))
            raise BadRequest(f"model '{name}' failed to load: {reasons or 'no version matches its version policy'}")

    async def unload_model(self, name: str) -> None:
        self.registry.state(name)
        await self.registry.unload_model(name)


def _decode_v2(codec: ModelCodec, req: InferRequest, max_instances: int) -> Decoded:
    return codec.decode_v2(req, max_instances)


def _encode_v2(s: Servable, y: np.ndarray, req: InferRequest) -> InferResponse:
    return InferResponse(
        s.name,
        str(s.version),
        req.id or request_id.get() or new_request_id(),
        s.codec.encode_v2(y, req.outputs, req.parameters.get("top_k")),
        {"variant": s.variant_name, "runtime": s.runtime.name, "device": s.runtime.device},
    )
