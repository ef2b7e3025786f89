"""The batcher on its own: rows given as token ids and as dense rows join one batch, each request gets its own
rows back, and the reused multi-hot array never carries one batch's ids into the next."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from modelyard.encoding import IdRows, multi_hot
from serving.batching import Batcher, BatchPolicy

WIDTH = 12


def _expected(x: np.ndarray) -> np.ndarray:
    """Output row = (sum of the row, weighted sum): answers depend on exactly which columns are set."""
    return np.stack([x.sum(axis=1), x @ np.arange(1, WIDTH + 1, dtype=np.float32)], axis=1)


def _model(seen: list):
    def predict(x: np.ndarray) -> np.ndarray:
        seen.append(x.copy())
        return _expected(x)

    return predict


@pytest.mark.parametrize("inline_ms", [0.0, 1000.0], ids=["worker-thread", "inline"])
def test_id_rows_and_dense_rows_batch_together_and_answer_each_request(inline_ms):
    seen: list[np.ndarray] = []
    rng = np.random.default_rng(1)
    requests = []
    for i in range(12):
        ids = [rng.integers(0, WIDTH, size=5) for _ in range(1 + i % 2)]
        requests.append(IdRows(ids, WIDTH) if i % 3 else multi_hot(ids, WIDTH))

    async def main():
        b = Batcher(_model(seen), BatchPolicy(8, 0, 64, inline_ms), name="t")
        b.start()
        outs = await asyncio.gather(*(b.submit(x) for x in requests))
        await b.close()
        return outs, b

    outs, b = asyncio.run(main())
    for x, y in zip(requests, outs):
        dense = x.dense() if isinstance(x, IdRows) else x
        np.testing.assert_allclose(y, _expected(dense))
    assert len(seen) >= 2 and max(len(x) for x in seen) > 1  # several batches, some of several requests
    assert b._multi_hot is not None and not b._multi_hot.array.any()


def test_a_failing_batch_still_clears_the_multi_hot_array():
    calls = []

    def predict(x):
        calls.append(int(x.sum()))
        if len(calls) == 1:
            raise RuntimeError("model failed")
        return x.sum(axis=1, keepdims=True)

    async def main():
        b = Batcher(predict, BatchPolicy(4, 0, 8, 0), name="t")
        b.start()
        with pytest.raises(RuntimeError, match="model failed"):
            await b.submit(IdRows([np.array([1, 2, 3])], WIDTH))
        y = await b.submit(IdRows([np.array([5])], WIDTH))
        await b.close()
        return y

    y = asyncio.run(main())
    assert calls == [3, 1] and y.tolist() == [[1.0]]


def test_a_request_larger_than_the_batch_gets_its_own_array():
    seen: list[np.ndarray] = []
    ids = [np.array([i % WIDTH]) for i in range(10)]

    async def main():
        b = Batcher(_model(seen), BatchPolicy(4, 0, 8), name="t")
        b.start()
        y = await b.submit(IdRows(ids, WIDTH))
        await b.close()
        return y, b

    y, b = asyncio.run(main())
    np.testing.assert_allclose(y, _expected(multi_hot(ids, WIDTH)))
    assert b._multi_hot is None  # the pool is never grown past max_batch_size
