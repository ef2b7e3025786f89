"""Which model versions are loaded, kept in line with the repository.

As TF Serving and Triton: the repository is polled; a version policy (latest N / all / specific) says which
versions to serve; a new version is verified against its manifest sha256, loaded and warmed up before it takes
traffic (:mod:`serving.loading`); a version that fails is reported (log, metric, ``/v1/models/{name}`` status),
tried again only once its files change and with backoff, and the versions already loaded keep serving. The parts:

- :mod:`serving.serving_config` the config file (version policy, labels, traffic, shadow, batching, threshold)
- :mod:`serving.routing`        which versions to load and which servable answers a request (pure functions)
- :mod:`serving.loading`        verify, load and warm up a version
- :mod:`serving.lifecycle`      start and stop a loaded servable (batcher, metric series, memory)
- :mod:`serving.servables`      what is held: servables and each model's state
- :mod:`serving.shadow`         mirroring to a shadow candidate
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from pathlib import Path

from modelyard.errors import ModelyardError
from modelyard.repository import ModelRepository
from modelyard.settings import Settings
from serving import lifecycle, routing
from serving.batching import BatchPolicy
from serving.errors import NotFound, Unavailable
from serving.loading import load_version, signature
from serving.metrics import Metrics
from serving.runtimes import runtime_info
from serving.servables import ModelState, Servable
from serving.serving_config import ConfigFile, ModelConfig
from serving.statistics import Statistics

log = logging.getLogger("serving.registry")


class Registry:
    def __init__(self, settings: Settings, metrics: Metrics, stats: Statistics):
        self._runtime_default = runtime_info(settings.runtime).default_variant  # unknown: a startup error
        self.settings = settings
        self.metrics = metrics
        self.stats = stats
        self.repo = ModelRepository(Path(settings.repo).absolute())
        self._root_prefixes = sorted(
            {f"{self.repo.root}{os.sep}", f"{self.repo.root.resolve()}{os.sep}"}, key=len, reverse=True
        )
        """The repository root as load errors may spell it, to be cut from messages clients see."""
        self.config_file = ConfigFile(settings.config)
        self.batching = BatchPolicy.from_settings(settings)
        """The server-wide batch policy, which a model's ``batching`` config keys override."""
        self.models: dict[str, ModelState] = {}
        self.initial_load_done = False
        self._lock = asyncio.Lock()
        self.unloaded: set[str] = set()
        """Models unloaded by a repository request: polling leaves them alone until they are loaded again."""

    # -------------------------------------------------------------- config
    def model_config(self, name: str) -> ModelConfig:
        return self.config_file.config.model(name)

    def default_variant(self, name: str) -> str:
        return routing.default_variant(self.model_config(name), self.settings.variant, self._runtime_default)

    def _reload_config(self) -> None:
        """A changed config file moves every model's config and threshold; versions follow at this poll."""
        if not self.config_file.refresh():
            return
        for st in self.models.values():
            st.config = self.model_config(st.name)
            for s in st.servables():
                s.codec.task.threshold = st.config.threshold

    # -------------------------------------------------------------- status
    def expected_models(self) -> list[str]:
        return sorted(set(self.repo.model_names()) - self.unloaded)

    def ready(self) -> bool:
        return self.initial_load_done and all(
            n in self.models and self.models[n].versions for n in self.expected_models()
        )

    # -------------------------------------------------------------- polling
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
            await self._load(st, v, latest=(v == newest))
        # Retire versions the policy no longer wants, once what it wants is serving.
        desired = self._desired(st, available)
        if any(v in st.versions for v in desired):
            retired = [v for v in st.versions if v not in desired]
            await self._retire([s for v in retired for s in st.versions.pop(v).values()])

    def _desired(self, st: ModelState, available: list[int]) -> list[int]:
        may_load = [v for v in available if st.may_load(v, functools.partial(self._signature, st.name, v))]
        return routing.wanted_versions(st.config, may_load)

    def _signature(self, name: str, version: int) -> tuple:
        return signature(self.repo.path(name, version))

    async def _load(self, st: ModelState, v: int, latest: bool) -> None:
        """Load one version (verified, warmed up) and start its batchers; a failure is recorded, never raised."""
        cfg, name = st.config, st.name
        variants = routing.variants_to_load(cfg, self.default_variant(name), v, latest)
        st.loading.add(v)
        t0 = time.perf_counter()
        # Signed before the try: files that change while it runs make the version due again.
        sig = self._signature(name, v)
        try:
            servables = await asyncio.to_thread(
                load_version,
                self.repo,
                name,
                v,
                variants,
                self.settings,
                cfg.threshold,
                routing.named_variants(cfg, self.settings.variant),
            )
        except Exception as e:  # noqa: BLE001 - any load failure is reported, never fatal
            msg = self._relative(str(e) if isinstance(e, ModelyardError) else f"{type(e).__name__}: {e}")
            st.record_failure(v, sig, msg, self.settings.poll_interval_s)
            self.metrics.load_failures.labels(name, str(v)).inc()
            log.error(
                "model version failed to load; versions already loaded keep serving",
                extra={"model": name, "version": v, "reason": msg, "serving": sorted(st.versions)},
            )
            return
        finally:
            st.loading.discard(v)
        policy = cfg.batching.over(self.batching)
        for s in servables:
            lifecycle.start(s, policy, self.metrics, self.stats)
        st.record_loaded(v, servables)
        for s in servables:
            log.info(
                "model version loaded and warmed up",
                extra={
                    "model": name,
                    "version": v,
                    "variant": s.variant_name,
                    "runtime": s.runtime.name,
                    "device": s.runtime.device,
                    "load_seconds": round(time.perf_counter() - t0, 3),
                    **({"providers": s.runtime.describe().get("providers")} if s.runtime.name == "onnx" else {}),
                },
            )

    def _relative(self, message: str) -> str:
        """A load error with paths relative to the repository root: clients see no server filesystem layout."""
        for prefix in self._root_prefixes:
            message = message.replace(prefix, "")
        return message

    async def _retire(self, servables: list[Servable]) -> None:
        """Unload versions the server no longer serves, and give their memory back now."""
        for s in servables:
            await lifecycle.stop(s, self.metrics, self.settings.drain_timeout_s)
        if servables:
            lifecycle.reclaim_memory()

    async def run_polling(self) -> None:
        interval = self.settings.poll_interval_s
        while interval > 0:
            await asyncio.sleep(interval)
            try:
                await self.poll()
            except Exception:  # noqa: BLE001
                log.exception("repository poll failed")

    # -------------------------------------------------------------- admin requests
    async def unload(self, name: str, version: int) -> None:
        st = self.models.get(name)
        if st is None or version not in st.versions:
            raise NotFound(f"model '{name}' has no loaded version {version}")
        async with self._lock:
            gone = st.versions.pop(version)
            st.failed[version] = (self._signature(name, version), "unloaded by an admin request")
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
            await self._retire(st.servables() if st else [])
            self.metrics.ready.set(1 if self.ready() else 0)

    async def reload(self, name: str | None = None) -> None:
        """Forget remembered failures (of one model or all) and poll now."""
        for st in self.models.values():
            if name is None or st.name == name:
                st.forget_failures()
        await self.poll()

    async def close(self) -> None:
        for st in self.models.values():
            for s in st.servables():
                await lifecycle.stop(s, self.metrics, self.settings.drain_timeout_s)
            st.versions.clear()

    # -------------------------------------------------------------- routing
    def state(self, name: str) -> ModelState:
        """A model's state, else why it has none: unloaded or unknown (404), or not loaded yet (503)."""
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
        return routing.servable(st, version, variant, self._default_of(st))

    def resolve(
        self, name: str, version: str | int | None = None, label: str | None = None
    ) -> tuple[Servable, Servable | None]:
        """The servable that answers, and the shadow candidate (or None): :func:`serving.routing.resolve`."""
        st = self.state(name)
        return routing.resolve(st, self._default_of(st), version, label)

    def _default_of(self, st: ModelState) -> str:
        """The default variant from the model's state (its config as last read), without a config lookup."""
        return routing.default_variant(st.config, self.settings.variant, self._runtime_default)
