"""Per model version counts and cumulative time per stage, for Triton's statistics extension
(``GET /v2/models/{m}/stats``). Plain integers updated on the event loop: no locks, nothing per request but a
few additions (Prometheus histograms hold the distributions; these hold Triton's totals)."""

from __future__ import annotations

import time

STAGES = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")
SUCCESS, FAIL, QUEUE, COMPUTE_INPUT, COMPUTE_INFER, COMPUTE_OUTPUT = range(len(STAGES))


class _Record:
    __slots__ = ("counts", "ns", "inference_count", "execution_count", "last_inference_ms", "batches")

    def __init__(self):
        self.counts = [0] * len(STAGES)
        self.ns = [0] * len(STAGES)
        self.inference_count = 0
        self.execution_count = 0
        self.last_inference_ms = 0
        self.batches: dict[int, list[int]] = {}
        """Batch size -> [executions, ns]."""

    def add(self, stage: int, seconds: float, count: int = 1) -> None:
        self.counts[stage] += count
        self.ns[stage] += int(seconds * 1e9)


class Statistics:
    def __init__(self):
        self._records: dict[tuple[str, int], _Record] = {}

    def _record(self, model: str, version: int) -> _Record:
        r = self._records.get((model, version))
        if r is None:
            r = self._records[(model, version)] = _Record()
        return r

    def request(self, model: str, version: int, total: float, decode: float, encode: float) -> None:
        """A request answered: its whole time, and the time to decode its input and encode its output (on the
        hot path: written out rather than three calls of :meth:`_Record.add`)."""
        r = self._records.get((model, version)) or self._record(model, version)
        counts, ns = r.counts, r.ns
        counts[SUCCESS] += 1
        counts[COMPUTE_INPUT] += 1
        counts[COMPUTE_OUTPUT] += 1
        ns[SUCCESS] += int(total * 1e9)
        ns[COMPUTE_INPUT] += int(decode * 1e9)
        ns[COMPUTE_OUTPUT] += int(encode * 1e9)
        r.last_inference_ms = int(time.time() * 1000)

    def failure(self, model: str, version: int, total: float) -> None:
        self._record(model, version).add(FAIL, total)

    def batch(self, model: str, version: int, rows: int, waits: list[float], seconds: float) -> None:
        """A batch run: every request in it waited ``waits`` and shared the ``seconds`` of the model run."""
        r = self._records.get((model, version)) or self._record(model, version)
        n = len(waits)
        r.counts[QUEUE] += n
        r.ns[QUEUE] += int(sum(waits) * 1e9)
        r.add(COMPUTE_INFER, seconds * n, n)
        r.inference_count += rows
        r.execution_count += 1
        b = r.batches.setdefault(rows, [0, 0])
        b[0] += 1
        b[1] += int(seconds * 1e9)

    def triton(self, model: str, version: int) -> dict:
        """One entry of Triton's ``model_stats``."""
        r = self._records.get((model, version)) or _Record()
        return {"name": model, "version": str(version), "last_inference": r.last_inference_ms,
                "inference_count": r.inference_count, "execution_count": r.execution_count,
                "inference_stats": {s: {"count": r.counts[i], "ns": r.ns[i]} for i, s in enumerate(STAGES)},
                "batch_stats": [{"batch_size": size, "compute_infer": {"count": n, "ns": ns}}
                                for size, (n, ns) in sorted(r.batches.items())]}
