"""Starting and stopping one loaded servable: its batcher and its metric series; and giving a retired version's
memory back at once."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging

from serving.batching import Batcher, BatchPolicy
from serving.metrics import Metrics
from serving.servables import Servable
from serving.statistics import Statistics

log = logging.getLogger("serving.registry")  # the registry's log lines keep their logger name


def start(s: Servable, policy: BatchPolicy, metrics: Metrics, stats: Statistics) -> None:
    """Give a warmed-up servable its batcher, which reports every batch to the metrics and the statistics."""
    lbl = (s.name, str(s.version), s.variant_name)
    m = metrics
    qh, ih, bh = m.queue_wait.labels(*lbl), m.inference.labels(*lbl), m.batch_size.labels(*lbl)

    def observe(rows: int, waits: list[float], seconds: float) -> None:
        stats.batch(s.name, s.version, rows, waits, seconds)
        bh.observe(rows)
        ih.observe(seconds)
        for w in waits:
            qh.observe(w)

    s.batcher = Batcher(s.runtime.predict, policy, name=f"{s.name}-{s.version}-{s.variant_name}", observer=observe)
    s.batcher.start()
    m.loaded.labels(*lbl, s.runtime.name, s.runtime.device).set(1)
    if s.runtime.provider:
        m.provider_info.labels(*lbl, s.runtime.provider).set(1)


async def stop(s: Servable, metrics: Metrics, drain_timeout_s: float) -> None:
    """Answer what its batcher holds (within ``drain_timeout_s``), close its runtime, drop its metric series."""
    log.info("unloading model version", extra={"model": s.name, "version": s.version, "variant": s.variant_name})
    if s.batcher is not None:
        await s.batcher.close(drain_timeout_s)
    s.runtime.close()
    lbl = (s.name, str(s.version), s.variant_name)
    m = metrics
    if m.multiprocess:  # the workers' values live in shared files, which cannot drop a series: say 0
        m.loaded.labels(*lbl, s.runtime.name, s.runtime.device).set(0)
        m.provider_info.labels(*lbl, s.runtime.provider).set(0)
        return
    for metric, labels in (
        (m.loaded, (*lbl, s.runtime.name, s.runtime.device)),
        (m.provider_info, (*lbl, s.runtime.provider)),
        (m.queue_wait, lbl),
        (m.inference, lbl),
        (m.batch_size, lbl),
    ):
        with contextlib.suppress(KeyError):  # series of a retired version: /metrics does not grow per reload
            metric.remove(*labels)


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
