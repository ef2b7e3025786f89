"""Which model versions are loaded, and which one answers a request.

As TF Serving and Triton: the repository is polled; a version policy (latest N / all / specific)
says which versions to serve; labels (``stable``, ``canary``) name versions; a new version is verified
against its manifest sha256, loaded and warmed up before it takes traffic; a version that fails is
reported (log, metric, ``/v1/models/{name}`` status) and the versions already loaded keep serving.
Requests without a version are split between versions or variants by weight, and can be mirrored
to a shadow candidate whose agreement with the primary is a metric.

Config file (YAML or JSON), every key optional::

    models:
      imdb:
        version_policy: latest        # latest | all | specific
        num_versions: 1               # for latest
        versions: [1, 2]              # for specific
        variant: onnx_fp32            # default variant for this model
        labels: {stable: 1, canary: 2}
        traffic:                      # weighted split for requests that name no version or label
          - {version: 1, weight: 90}
          - {version: 2, weight: 10}  # or {variant: tflite_fp32, weight: 10}
        shadow: {version: 2}          # mirror requests to this candidate; answer from the primary
        max_batch_size: 64
        max_queue_delay_ms: 2
        max_queue_size: 256
        threshold: 0.5                # binary classifiers: probability from which the label is positive
        log_sample_rate: 0.1          # share of requests the prediction log keeps (--prediction-log)
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard.errors import ModelyardError
from modelyard.manifest import MANIFEST_FILE, Manifest, VariantRecord
from modelyard.repository import ModelRepository
from modelyard.settings import Settings
from serving.batching import Batcher
from serving.codecs import ModelCodec
from serving.errors import BadRequest, NotFound, Unavailable
from serving.metrics import Metrics
from serving.statistics import Statistics
from serving.tasks import DEFAULT_THRESHOLD
from serving.runtimes import runtime_class, runtime_info
from serving.runtimes.base import Runtime, RuntimeLoadError

log = logging.getLogger("serving.registry")


# ------------------------------------------------------------------ config file
class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Target(_Cfg):
    version: int | None = Field(default=None, ge=1)
    """None: the latest loaded version."""
    variant: str | None = None
    """None: the model's default variant."""
    weight: float = Field(default=1.0, ge=0)


class ModelConfig(_Cfg):
    version_policy: Literal["latest", "all", "specific"] = "latest"
    num_versions: int = Field(default=1, ge=1)
    versions: list[int] = []
    variant: str | None = None
    labels: dict[str, int] = {}
    traffic: list[Target] = []
    shadow: Target | None = None
    log_sample_rate: float | None = Field(default=None, ge=0, le=1)
    """Share of this model's requests the prediction log keeps (default: ``--log-sample-rate``)."""
    max_batch_size: int | None = Field(default=None, ge=1)
    max_queue_delay_ms: float | None = Field(default=None, ge=0)
    max_queue_size: int | None = Field(default=None, ge=1)
    threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0, lt=1)
    """Binary classifiers: the probability from which an input is labelled positive (labels on every protocol,
    the prediction metrics, the console and ``modelyard report`` use it)."""


_NO_CONFIG = ModelConfig()
"""The settings of a model the config file does not name (shared, read-only: the hot path must not build one)."""


class ServeConfig(_Cfg):
    models: dict[str, ModelConfig] = {}

    @classmethod
    def read(cls, path: Path | None) -> ServeConfig:
        if path is None:
            return cls()
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise ModelyardError(f"serving config {path}: {e.strerror}") from None
        try:
            if Path(path).suffix in (".yaml", ".yml"):
                import yaml
                data = yaml.safe_load(text) or {}
            else:
                data = json.loads(text)
        except Exception as e:  # noqa: BLE001
            raise ModelyardError(f"serving config {path}: not valid {'YAML' if Path(path).suffix in ('.yaml', '.yml') else 'JSON'}: {e}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            raise ModelyardError(f"serving config {path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


# ------------------------------------------------------------------ loaded things
@dataclass
class Servable:
    """One loaded (model, version, variant): its runtime, codec and batcher."""

    name: str
    version: int
    variant_name: str
    variant: VariantRecord
    manifest: Manifest
    runtime: Runtime
    codec: ModelCodec
    batcher: Batcher | None = None

    @property
    def key(self) -> str:
        return f"{self.version}/{self.variant_name}"

    @functools.cached_property
    def version_headers(self) -> list[tuple[bytes, bytes]]:
        """``X-Model-Version`` and ``X-Model-Variant``, for the answers it gives."""
        return [(b"x-model-version", b"%d" % self.version), (b"x-model-variant", self.variant_name.encode())]


@dataclass
class ModelState:
    name: str
    config: ModelConfig
    versions: dict[int, dict[str, Servable]] = field(default_factory=dict)
    failed: dict[int, tuple[tuple, str]] = field(default_factory=dict)
    """Versions refused, or unloaded by an admin: the signature of their files when tried, and why."""
    backoff: dict[int, tuple[int, float]] = field(default_factory=dict)
    """Versions failing in a row: how many failures, and the ``time.monotonic()`` before which none is tried."""
    loading: set[int] = field(default_factory=set)

    def latest(self) -> int | None:
        return max(self.versions) if self.versions else None


MAX_RETRY_BACKOFF_S = 300.0
"""The longest wait between two tries of a version whose files keep changing and that keeps failing."""


def _signature(vdir: Path) -> tuple:
    """Every file of a version directory as (relative path, size, mtime_ns, inode), read from ``stat`` alone.

    Any change to any file (a copy into the directory going on, a broken artifact repaired in place, a file
    replaced by rename) signs differently, so a refused version is tried again; its manifest need not be touched.
    """
    files = []
    for dirpath, _, names in os.walk(vdir):
        for n in names:
            path = os.path.join(dirpath, n)
            try:
                st = os.stat(path)
            except OSError:  # removed while walked: the next poll sees the change
                continue
            files.append((os.path.relpath(path, vdir), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(sorted(files))


def parse_version(text: str) -> int:
    """A version path segment: ASCII digits only (not ``²`` or ``١``), at most 18 of them, at least 1."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise BadRequest(f"version: '{text}' is not a version number (1, 2, ...)")
    return int(text)


def reclaim_memory() -> None:
    """Free retired versions at once. They sit in reference cycles (a batcher's observer refers to its servable),
    which only a full collection frees, and what start-up loaded is frozen (``gc.freeze``) so that collections
    skip it; so: unfreeze, collect, freeze what remains again, and ask glibc to return freed pages (without it a
    hot reload every 30 s grew the RSS by tens of MiB each time)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class Registry:
    def __init__(self, settings: Settings, metrics: Metrics, stats: Statistics):
        runtime_info(settings.runtime)  # an unknown runtime is a startup error naming the known ones
        self.settings = settings
        self.metrics = metrics
        self.stats = stats
        self.repo = ModelRepository(Path(settings.repo).absolute())
        self._root_prefixes = sorted({f"{self.repo.root}{os.sep}", f"{self.repo.root.resolve()}{os.sep}"},
                                     key=len, reverse=True)
        """The repository root as load errors may spell it, to be cut from messages clients see."""
        self.config_path = settings.config
        self.config = ServeConfig.read(settings.config)
        self._config_sig = self._cfg_sig()
        self.models: dict[str, ModelState] = {}
        self.initial_load_done = False
        self._lock = asyncio.Lock()
        self._shadow_tasks: set[asyncio.Task] = set()
        self.predlog = None
        """The prediction log (:mod:`serving.predlog`), which the shadow's answers go to as well; set by the data plane."""
        self.unloaded: set[str] = set()
        """Models unloaded by a repository request: polling leaves them alone until they are loaded again."""

    # -------------------------------------------------------------- config
    def _cfg_sig(self):
        try:
            return self.config_path.stat().st_mtime_ns if self.config_path else None
        except OSError:
            return None

    def _reload_config(self) -> None:
        sig = self._cfg_sig()
        if sig == self._config_sig:
            return
        try:
            self.config = ServeConfig.read(self.config_path)
            self._config_sig = sig
            for st in self.models.values():
                st.config = self.model_config(st.name)
                for s in (s for vs in st.versions.values() for s in vs.values()):
                    s.codec.task.threshold = st.config.threshold
            log.info("serving config reloaded", extra={"config": str(self.config_path)})
        except ModelyardError as e:
            self._config_sig = sig
            log.error("serving config not reloaded; keeping the previous one", extra={"reason": str(e)})

    def model_config(self, name: str) -> ModelConfig:
        return self.config.models.get(name) or _NO_CONFIG

    def default_variant(self, name: str) -> str:
        return self.settings.variant or self.model_config(name).variant or runtime_info(self.settings.runtime).default_variant

    def _explicit(self, name: str, variant: str) -> bool:
        cfg = self.model_config(name)
        return variant in (self.settings.variant, cfg.variant) or any(
            t.variant == variant for t in [*cfg.traffic, *([cfg.shadow] if cfg.shadow else [])])

    def _variants_for(self, name: str, version: int, latest: bool) -> list[str]:
        cfg = self.model_config(name)
        names = [self.default_variant(name)]
        for t in [*cfg.traffic, *([cfg.shadow] if cfg.shadow else [])]:
            if t.variant and (t.version == version or (t.version is None and latest)) and t.variant not in names:
                names.append(t.variant)
        return names

    # -------------------------------------------------------------- status
    def expected_models(self) -> list[str]:
        return sorted(set(self.repo.model_names()) - self.unloaded)

    def ready(self) -> bool:
        return self.initial_load_done and all(
            n in self.models and self.models[n].versions for n in self.expected_models())

    # -------------------------------------------------------------- loading
    def _load_blocking(self, name: str, version: int, variants: list[str]) -> list[Servable]:
        """Verify, load and warm up one version (runs in a worker thread)."""
        vdir = self.repo.path(name, version)
        manifest = Manifest.read(vdir / MANIFEST_FILE)
        problems = self.repo.verify(name, version)
        if problems:
            raise RuntimeLoadError(f"sha256 check against manifest failed: {'; '.join(problems[:5])}")
        codec = ModelCodec(manifest, vdir, self.model_config(name).threshold)
        example = codec.example(8)
        out_width = manifest.outputs[0].shape[-1]
        loaded = []
        for vname in variants:
            rec = manifest.variants.get(vname)
            if rec is None:
                raise RuntimeLoadError(f"no variant '{vname}' (variants: {', '.join(manifest.variants) or 'none'}); "
                                       f"export it first: modelyard export {name}")
            if rec.status == "rejected" and not self._explicit(name, vname):
                raise RuntimeLoadError(f"variant '{vname}' was rejected by export validation ({rec.reason or 'no reason given'}); "
                                       f"serve it anyway with --variant {vname}")
            rt = runtime_class(rec.format)(vdir / rec.path, rec, self.settings.device, self.settings.threads,
                                           self.settings.cuda_options())
            rt.load()
            rt.warmup(example)
            y = rt.predict(example[:2])
            if y.ndim != 2 or (out_width and y.shape[1] != out_width):
                raise RuntimeLoadError(f"variant '{vname}' outputs shape {list(y.shape)}, manifest says [N, {out_width}]")
            loaded.append(Servable(name, version, vname, rec, manifest, rt, codec))
        return loaded

    def _start(self, s: Servable) -> None:
        cfg = self.model_config(s.name)
        lbl = (s.name, str(s.version), s.variant_name)
        m = self.metrics
        qh, ih, bh = m.queue_wait.labels(*lbl), m.inference.labels(*lbl), m.batch_size.labels(*lbl)

        def observe(rows: int, waits: list[float], seconds: float) -> None:
            self.stats.batch(s.name, s.version, rows, waits, seconds)
            bh.observe(rows)
            ih.observe(seconds)
            for w in waits:
                qh.observe(w)

        s.batcher = Batcher(s.runtime.predict, name=f"{s.name}-{s.version}-{s.variant_name}",
                            max_batch_size=cfg.max_batch_size or self.settings.max_batch_size,
                            max_queue_delay_ms=cfg.max_queue_delay_ms if cfg.max_queue_delay_ms is not None
                            else self.settings.max_queue_delay_ms,
                            max_queue_size=cfg.max_queue_size or self.settings.max_queue_size,
                            inline_max_ms=self.settings.inline_inference_max_ms, observer=observe)
        s.batcher.start()
        m.loaded.labels(*lbl, s.runtime.name, s.runtime.device).set(1)
        if s.runtime.provider:
            m.provider_info.labels(*lbl, s.runtime.provider).set(1)

    async def _retire(self, servables: list[Servable]) -> None:
        """Unload versions the server no longer serves, and give their memory back now."""
        for s in servables:
            await self._unload(s)
        if servables:
            reclaim_memory()

    async def _unload(self, s: Servable) -> None:
        log.info("unloading model version", extra={"model": s.name, "version": s.version, "variant": s.variant_name})
        if s.batcher is not None:
            await s.batcher.close(self.settings.drain_timeout_s)
        s.runtime.close()
        lbl = (s.name, str(s.version), s.variant_name)
        m = self.metrics
        if m.multiprocess:  # the workers' values live in shared files, which cannot drop a series: say 0
            m.loaded.labels(*lbl, s.runtime.name, s.runtime.device).set(0)
            m.provider_info.labels(*lbl, s.runtime.provider).set(0)
            return
        for metric, labels in ((m.loaded, (*lbl, s.runtime.name, s.runtime.device)),
                               (m.provider_info, (*lbl, s.runtime.provider)), (m.queue_wait, lbl),
                               (m.inference, lbl), (m.batch_size, lbl)):
            with contextlib.suppress(KeyError):  # series of a retired version: /metrics does not grow per reload
                metric.remove(*labels)

    def _retry_due(self, st: ModelState, version: int) -> bool:
        """Whether a failed version is tried again: only once its files have changed, and not before its backoff
        ends, so that a version still being copied in is not loaded (and refused) on every poll."""
        _, not_before = st.backoff.get(version, (0, 0.0))
        return time.monotonic() >= not_before and st.failed[version][0] != _signature(self.repo.path(st.name, version))

    def _record_failure(self, st: ModelState, version: int, signature: tuple, message: str) -> None:
        """Remember why a version failed, and wait poll interval x 2^failures (capped) before trying it again."""
        failures = st.backoff.get(version, (0, 0.0))[0] + 1
        delay = min(self.settings.poll_interval_s * 2 ** min(failures, 16), MAX_RETRY_BACKOFF_S)
        st.failed[version] = (signature, message)
        st.backoff[version] = (failures, time.monotonic() + delay)

    def _relative(self, message: str) -> str:
        """A load error with paths relative to the repository root: clients see no server filesystem layout."""
        for prefix in self._root_prefixes:
            message = message.replace(prefix, "")
        return message

    def _desired(self, st: ModelState, available: list[int]) -> list[int]:
        cfg = st.config
        ok = [v for v in available if v in st.versions or v not in st.failed or self._retry_due(st, v)]
        if cfg.version_policy == "all":
            return ok
        if cfg.version_policy == "specific":
            return [v for v in ok if v in cfg.versions]
        return ok[-cfg.num_versions:]

    async def poll(self) -> None:
        """Bring the loaded versions in line with the repository and the version policy."""
        async with self._lock:
            self._reload_config()
            for name in self.expected_models():
                await self._poll_model(name)
            self.initial_load_done = True
            self.metrics.ready.set(1 if self.ready() else 0)

    async def _poll_model(self, name: str) -> None:
        st = self.models.setdefault(name, ModelState(name, self.model_config(name)))
        available = self.repo.versions(name)
        desired = self._desired(st, available)
        newest = max(desired) if desired else None
        for v in sorted(set(desired) - set(st.versions), reverse=True):
            variants = self._variants_for(name, v, latest=(v == newest))
            st.loading.add(v)
            t0 = time.perf_counter()
            # Signed before the try: files that change while it runs make the version due again.
            signature = _signature(self.repo.path(name, v))
            try:
                servables = await asyncio.to_thread(self._load_blocking, name, v, variants)
            except (ModelyardError, Exception) as e:  # noqa: BLE001 - any load failure is reported, never fatal
                msg = self._relative(str(e) if isinstance(e, ModelyardError) else f"{type(e).__name__}: {e}")
                self._record_failure(st, v, signature, msg)
                self.metrics.load_failures.labels(name, str(v)).inc()
                log.error("model version failed to load; versions already loaded keep serving",
                          extra={"model": name, "version": v, "reason": msg,
                                 "serving": sorted(st.versions)})
                continue
            finally:
                st.loading.discard(v)
            for s in servables:
                self._start(s)
            st.versions[v] = {s.variant_name: s for s in servables}
            st.failed.pop(v, None)
            st.backoff.pop(v, None)
            for s in servables:
                log.info("model version loaded and warmed up", extra={
                    "model": name, "version": v, "variant": s.variant_name, "runtime": s.runtime.name,
                    "device": s.runtime.device, "load_seconds": round(time.perf_counter() - t0, 3),
                    **({"providers": s.runtime.describe().get("providers")} if s.runtime.name == "onnx" else {})})
        # Retire versions the policy no longer wants, once what it wants is serving.
        desired = self._desired(st, available)
        if any(v in st.versions for v in desired):
            retired = [v for v in st.versions if v not in desired]
            await self._retire([s for v in retired for s in st.versions.pop(v).values()])

    async def unload(self, name: str, version: int) -> None:
        st = self.models.get(name)
        if st is None or version not in st.versions:
            raise NotFound(f"model '{name}' has no loaded version {version}")
        async with self._lock:
            gone = st.versions.pop(version)
            st.failed[version] = (_signature(self.repo.path(name, version)), "unloaded by an admin request")
            await self._retire(list(gone.values()))

    async def load(self, name: str) -> None:
        """Load a model now (after an unload, or to retry its failed versions)."""
        self.unloaded.discard(name)
        await self.reload(name)

    async def unload_model(self, name: str) -> None:
        """Unload every version of a model and keep it unloaded until :meth:`load`."""
        async with self._lock:
            self.unloaded.add(name)
            st = self.models.pop(name, None)
            await self._retire([s for vs in (st.versions.values() if st else ()) for s in vs.values()])
            self.metrics.ready.set(1 if self.ready() else 0)

    async def reload(self, name: str | None = None) -> None:
        """Forget remembered failures (of one model or all) and poll now."""
        for st in self.models.values():
            if name is None or st.name == name:
                st.failed.clear()
                st.backoff.clear()
        await self.poll()

    async def run_polling(self) -> None:
        interval = self.settings.poll_interval_s
        while interval > 0:
            await asyncio.sleep(interval)
            try:
                await self.poll()
            except Exception:  # noqa: BLE001
                log.exception("repository poll failed")

    async def close(self) -> None:
        for st in self.models.values():
            for vs in st.versions.values():
                for s in vs.values():
                    await self._unload(s)
            st.versions.clear()

    # -------------------------------------------------------------- routing
    def state(self, name: str) -> ModelState:
        st = self.models.get(name)
        if st is None or (not st.versions and not st.failed and not st.loading):
            if name in self.unloaded:
                raise NotFound(f"model '{name}' is unloaded; load it with POST /v2/repository/models/{name}/load")
            if name in self.expected_models():
                raise Unavailable(f"model '{name}' is loading; retry shortly", headers={"Retry-After": "1"})
            known = ", ".join(sorted(self.models)) or "none"
            raise NotFound(f"unknown model '{name}' (models: {known})")
        return st

    def servable(self, st: ModelState, version: int, variant: str | None) -> Servable:
        vs = st.versions.get(version)
        if vs is None:
            loaded = ", ".join(map(str, sorted(st.versions))) or "none"
            if version in st.failed:
                raise NotFound(f"model '{st.name}' version {version} is not available: it failed to load "
                               f"({st.failed[version][1]}); loaded versions: {loaded}")
            raise NotFound(f"model '{st.name}' has no version {version} loaded (loaded versions: {loaded})")
        vname = variant or self.default_variant(st.name)
        s = vs.get(vname)
        if s is None:
            raise NotFound(f"model '{st.name}' version {version} has no loaded variant '{vname}' "
                           f"(loaded: {', '.join(vs)})")
        return s

    def resolve(self, name: str, version: str | int | None = None,
                label: str | None = None) -> tuple[Servable, Servable | None]:
        """The servable that answers, and the shadow candidate (or None)."""
        st = self.state(name)
        if label is not None:
            if label not in st.config.labels:
                raise NotFound(f"model '{name}' has no label '{label}' "
                               f"(labels: {', '.join(st.config.labels) or 'none'})")
            version = st.config.labels[label]
        if version is not None:
            if isinstance(version, str):
                version = parse_version(version)
            return self.servable(st, version, None), None
        if not st.versions:
            if st.loading:
                raise Unavailable(f"model '{name}' is loading; retry shortly", headers={"Retry-After": "1"})
            raise Unavailable(f"model '{name}' has no loaded version: "
                              + "; ".join(f"version {v}: {m}" for v, (_, m) in sorted(st.failed.items())),
                              headers={"Retry-After": "5"})
        latest = st.latest()
        primary = None
        routes = [t for t in st.config.traffic if t.weight > 0]
        if routes:
            usable = [t for t in routes if (t.version or latest) in st.versions
                      and (t.variant or self.default_variant(name)) in st.versions[t.version or latest]]
            if usable:
                t = random.choices(usable, weights=[t.weight for t in usable])[0]
                primary = self.servable(st, t.version or latest, t.variant)
        if primary is None:
            primary = self.servable(st, latest, None)
        shadow = None
        sh = st.config.shadow
        if sh is not None:
            v = sh.version or latest
            vs = st.versions.get(v, {})
            cand = vs.get(sh.variant or self.default_variant(name))
            if cand is not None and cand is not primary:
                shadow = cand
        return primary, shadow

    # -------------------------------------------------------------- shadow
    def mirror(self, primary: Servable, shadow: Servable, x: np.ndarray, y: np.ndarray) -> None:
        task = asyncio.get_running_loop().create_task(self._shadow(primary, shadow, x, y))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(self, primary: Servable, shadow: Servable, x: np.ndarray, y: np.ndarray) -> None:
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


def preflight(settings: Settings) -> None:
    """Fail at startup, not later, when ``--device cuda`` cannot run: load the first model's artifact on it."""
    if settings.device != "cuda":
        return
    repo = ModelRepository(settings.repo)
    variant = settings.variant or runtime_info(settings.runtime).default_variant
    for name in repo.model_names():
        vdir = repo.path(name, repo.resolve(name))
        rec = Manifest.read(vdir / MANIFEST_FILE).variants.get(variant)
        if rec is not None:
            runtime_class(rec.format)(vdir / rec.path, rec, "cuda", settings.threads, settings.cuda_options()).load()
            return
    if not runtime_info(settings.runtime).gpu:
        raise RuntimeLoadError(f"--device cuda: the {settings.runtime} runtime runs on CPU only; use --runtime onnx")
