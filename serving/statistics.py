"""Per model version counts and cumulative time per stage, for Triton's statistics extension
(``GET /v2/models/{m}/stats``). Plain numbers updated on the event loop: no locks, nothing per request but a
few additions to one record's attributes (Prometheus histograms hold the distributions; these hold Triton's
totals). Times are summed in seconds and given in nanoseconds when asked for."""

from __future__ import annotations

import time

STAGES = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")


class _Record:
    __slots__ = (
        "success",
        "success_s",
        "input_s",
        "output_s",
        "fail",
        "fail_s",
        "batched",
        "queue_s",
        "infer_s",
        "last",
        "batches",
    )

    def __init__(self):
        self.success = self.fail = self.batched = 0
        """Requests answered (each also decoded and encoded once), failed, and queued then run in a batch."""
        self.success_s = self.input_s = self.output_s = self.fail_s = self.queue_s = self.infer_s = 0.0
        self.last: float | None = None
        """``time.perf_counter()`` when the last request was answered."""
        self.batches: dict[int, list] = {}
        """Batch size -> [executions, seconds]: also the rows and runs in all (Triton's inference and execution
        counts)."""

    def answered(self, total: float, decode: float, encode: float, end: float) -> None:
        """A request answered at ``end`` (``time.perf_counter()``): its whole time, and the time to decode its
        input and encode its output."""
        self.success += 1
        self.success_s += total
        self.input_s += decode
        self.output_s += encode
        self.last = end

    def stages(self) -> dict:
        counts = (self.success, self.fail, self.batched, self.success, self.batched, self.success)
        seconds = (self.success_s, self.fail_s, self.queue_s, self.input_s, self.infer_s, self.output_s)
        return {s: {"count": n, "ns": int(t * 1e9)} for s, n, t in zip(STAGES, counts, seconds)}


class Statistics:
    def __init__(self):
        self._records: dict[tuple[str, int], _Record] = {}

    def record(self, model: str, version: int) -> _Record:
        """A version's record; the data plane keeps it to count what it answers (:meth:`_Record.answered`)."""
        r = self._records.get((model, version))
        if r is None:
            r = self._records[(model, version)] = _Record()
        return r

    def failure(self, model: str, version: int, total: float) -> None:
        r = self.record(model, version)
        r.fail += 1
        r.fail_s += total

    def batch(self, model: str, version: int, rows: int, waits: list[float], seconds: float) -> None:
        """A batch run: every request in it waited ``waits`` and shared the ``seconds`` of the model run."""
        r = self._records.get((model, version)) or self.record(model, version)
        n = len(waits)
        r.batched += n
        r.queue_s += sum(waits)
        r.infer_s += seconds * n
        b = r.batches.get(rows)
        if b is None:
            b = r.batches[rows] = [0, 0.0]
        b[0] += 1
        b[1] += seconds

    def triton(self, model: str, version: int) -> dict:
        """One entry of Triton's ``model_stats``."""
        r = self._records.get((model, version)) or _Record()
        last = 0 if r.last is None else int((time.time() - time.perf_counter() + r.last) * 1000)
        return {
            "name": model,
            "version": str(version),
            "last_inference": last,
            "inference_count": sum(size * n for size, (n, _) in r.batches.items()),
            "execution_count": sum(n for n, _ in r.batches.values()),
            "inference_stats": r.stages(),
            "batch_stats": [
                {"batch_size": size, "compute_infer": {"count": n, "ns": int(s * 1e9)}}
                for size, (n, s) in sorted(r.batches.items())
            ],
        }
