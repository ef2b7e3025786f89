"""What the registry holds: a :class:`Servable` per loaded (model, version, variant), and per model a
:class:`ModelState`: its loaded versions, those loading, and those refused with when to try them again."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard.manifest import Manifest, VariantRecord
from serving.batching import Batcher
from serving.codecs import ModelCodec
from serving.runtimes.base import Runtime
from serving.serving_config import ModelConfig

MAX_RETRY_BACKOFF_S = 300.0
"""The longest wait between two tries of a version whose files keep changing and that keeps failing."""


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

    def servables(self) -> list[Servable]:
        return [s for vs in self.versions.values() for s in vs.values()]

    def may_load(self, version: int, signature: Callable[[], tuple]) -> bool:
        """Whether a version is loaded or may be tried: never refused, or refused but due again. A refused version
        is tried again only once its files have changed (``signature()`` differs), and not before its backoff
        ends, so that a version still being copied in is not loaded (and refused) on every poll."""
        if version in self.versions or version not in self.failed:
            return True
        _, not_before = self.backoff.get(version, (0, 0.0))
        return time.monotonic() >= not_before and self.failed[version][0] != signature()

    def record_failure(self, version: int, signature: tuple, message: str, poll_interval_s: float) -> None:
        """Remember why a version failed, and wait poll interval x 2^failures (capped) before trying it again."""
        failures = self.backoff.get(version, (0, 0.0))[0] + 1
        delay = min(poll_interval_s * 2 ** min(failures, 16), MAX_RETRY_BACKOFF_S)
        self.failed[version] = (signature, message)
        self.backoff[version] = (failures, time.monotonic() + delay)

    def record_loaded(self, version: int, servables: list[Servable]) -> None:
        self.versions[version] = {s.variant_name: s for s in servables}
        self.failed.pop(version, None)
        self.backoff.pop(version, None)

    def forget_failures(self) -> None:
        self.failed.clear()
        self.backoff.clear()
