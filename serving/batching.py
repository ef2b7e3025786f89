"""Dynamic batching per loaded model: the requests already received when a batch starts, and those that arrive
within ``max_queue_delay`` after its first one, are joined into one batch of at most ``max_batch_size`` rows
and run in a worker thread. With a delay of 0 (the default) the batcher never waits idle: requests that arrive
while a batch runs form the next one, so batches grow with load and a lone request is answered at once.
A batch whose recent run time is below ``inline_max_ms`` runs on the event loop instead: for models this small,
handing a batch to a thread and waking the loop again costs more than the model (see README, Benchmark), and
nothing else could run meanwhile on a busy core.

Text models' rows may arrive as token ids (:class:`~modelyard.encoding.IdRows`): a batch of them is written
into one multi-hot array the batcher keeps and reuses, so a request never allocates a vocabulary-wide row.

The queue is bounded: when ``max_queue_size`` requests are already waiting, :meth:`Batcher.submit`
raises :class:`QueueFull` at once (the route answers 503 with ``Retry-After``), so latency never grows
without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from modelyard.encoding import IdRows, MultiHotBatch
from serving.errors import Unavailable


@dataclass(frozen=True)
class BatchPolicy:
    """How a model version's requests are batched: the server-wide flags (:meth:`from_settings`), which a model's
    ``batching`` keys in the serving config override (:class:`serving.serving_config.BatchConfig`)."""

    max_batch_size: int
    """Rows per batch at most (``--max-batch-size``, ``MODELYARD_MAX_BATCH_SIZE``; default 64)."""
    max_queue_delay_ms: float
    """How long a batch may wait for more requests after its first (``--max-queue-delay-ms``; default 0: never
    wait idle)."""
    max_queue_size: int
    """Requests waiting before :class:`QueueFull` (``--max-queue-size``; default 1024)."""
    inline_max_ms: float = 0.0
    """Batches that recently ran faster than this run on the event loop (``MODELYARD_INLINE_INFERENCE_MAX_MS``;
    default 0.5; 0: always in the inference thread)."""

    @classmethod
    def from_settings(cls, settings) -> BatchPolicy:
        """The server-wide policy (:class:`modelyard.settings.Settings`)."""
        return cls(
            settings.max_batch_size,
            settings.max_queue_delay_ms,
            settings.max_queue_size,
            settings.inline_inference_max_ms,
        )


class QueueFull(Unavailable):
    pass


class Retired(Exception):
    """The batcher was closed (its version was unloaded); the caller resolves the model again."""


class _Item:
    __slots__ = ("x", "future", "enqueued")

    def __init__(self, x: np.ndarray | IdRows, future: asyncio.Future):
        self.x = x
        self.future = future
        self.enqueued = time.perf_counter()


class Batcher:
    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], policy: BatchPolicy, *, name: str, observer=None):
        self._predict = predict
        self.name = name
        self.max_batch_size = max(1, policy.max_batch_size)
        self.max_delay = max(0.0, policy.max_queue_delay_ms) / 1000.0
        self.max_queue_size = max(1, policy.max_queue_size)
        self._observer = observer
        """Called as ``observer(batch_rows, queue_waits, inference_seconds)`` after every batch."""
        self._queue: deque[_Item] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{name}")
        self._inline_max = max(0.0, policy.inline_max_ms) / 1000.0
        self._recent = float("inf")
        """Exponentially weighted mean of recent batch run times; the first batch always runs in the thread."""
        self._multi_hot: MultiHotBatch | None = None
        """Created at the first batch of token-id rows, ``max_batch_size`` rows of the model's input width."""
        self._closed = False
        self.pending = 0
        """Requests accepted but not yet running (queued or being gathered into a batch)."""

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self.name}")

    def check_capacity(self) -> None:
        """Raise :class:`QueueFull` when ``max_queue_size`` requests are already waiting."""
        if self.pending >= self.max_queue_size:
            raise QueueFull(
                f"model '{self.name}' is at capacity ({self.max_queue_size} requests queued); retry shortly",
                headers={"Retry-After": "1"},
            )

    def submit(self, x: np.ndarray | IdRows) -> asyncio.Future[np.ndarray]:
        """Queue ``x``; await the future for its rows of the model's output. A plain function, not a coroutine: the
        caller awaits the future itself, one coroutine frame less to suspend and resume per request."""
        if self._closed:
            raise Retired(self.name)
        self.check_capacity()
        fut = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(x, fut))
        self.pending += 1
        self._wakeup.set()
        return fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._queue.popleft()]
            rows = len(batch[0].x)
            deadline = batch[0].enqueued + self.max_delay
            yielded = False
            while rows < self.max_batch_size:
                if self._queue:
                    if rows + len(self._queue[0].x) > self.max_batch_size:
                        break
                    item = self._queue.popleft()
                    batch.append(item)
                    rows += len(item.x)
                    continue
                if not yielded:  # requests already received join without any wait
                    yielded = True
                    await asyncio.sleep(0)
                    continue
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._closed:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            self.pending -= len(batch)
            batch = [b for b in batch if not b.future.done()]  # callers that went away
            if not batch:
                continue
            started = time.perf_counter()
            x, pooled = self._collate([b.x for b in batch])
            try:
                if self._recent < self._inline_max:
                    y, elapsed = self._timed_predict(x)
                else:
                    y, elapsed = await loop.run_in_executor(self._executor, self._timed_predict, x)
            except Exception as e:  # noqa: BLE001 - delivered to every waiting request
                for b in batch:
                    if not b.future.done():
                        b.future.set_exception(e)
                continue
            finally:
                if pooled:
                    self._multi_hot.clear()
            self._recent = elapsed if self._recent == float("inf") else 0.9 * self._recent + 0.1 * elapsed
            offset = 0
            for b in batch:
                n = len(b.x)
                if not b.future.done():
                    b.future.set_result(y[offset : offset + n])
                offset += n
            if self._observer is not None:
                self._observer(len(x), [started - b.enqueued for b in batch], elapsed)

    def _collate(self, parts: list[np.ndarray | IdRows]) -> tuple[np.ndarray, bool]:
        """The batch input, and whether it is a view of the reused multi-hot array (cleared after the run)."""
        if not any(isinstance(p, IdRows) for p in parts):
            return (parts[0] if len(parts) == 1 else np.concatenate(parts)), False
        if sum(map(len, parts)) > self.max_batch_size:  # one oversized request: its own array, not a bigger pool
            return np.concatenate([p.dense() if isinstance(p, IdRows) else p for p in parts]), False
        if self._multi_hot is None:
            width = next(p.width for p in parts if isinstance(p, IdRows))
            self._multi_hot = MultiHotBatch(self.max_batch_size, width)
        return self._multi_hot.fill(parts), True

    def _timed_predict(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """The model's own run time, without the thread handoff, decides where the next batch runs."""
        t0 = time.perf_counter()
        y = self._predict(x)
        return y, time.perf_counter() - t0

    async def close(self, timeout: float = 30.0) -> None:
        """Stop taking requests, finish those already queued, then stop."""
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
        self._executor.shutdown(wait=False)
