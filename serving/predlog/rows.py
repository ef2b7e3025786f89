"""A logged request -> database rows, one per instance. Runs in the writer thread, never on the event loop:
the request path hands over references only (:class:`Entry`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from modelyard.encoding import IdRows


@dataclass(slots=True)
class Entry:
    """What the request path hands to the writer: references, no copies, no conversion."""

    request_id: str
    ts: float
    servable: object
    """:class:`serving.registry.Servable` that answered."""
    arm: str
    x: object
    """The model input: an ndarray ``[N, width]`` or :class:`IdRows` (token ids)."""
    texts: list | None
    """The raw texts as sent (str, or UTF-8 bytes from a binary transport), when the request sent texts."""
    y: np.ndarray
    latency_s: float


def _text(t) -> str:
    return t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t)


def inputs(codec, x, texts) -> list[dict | None]:
    """Each instance's input as the client sent it: review text, token ids, named features (or the multi-hot
    vector's set positions when that is what was sent)."""
    if texts is not None:
        return [{"text": _text(t)} for t in texts]
    if isinstance(x, IdRows):
        return [{"ids": np.asarray(r).tolist()} for r in x.ids]
    if codec.kind == "tabular":
        names = codec.feature_names
        return [{"features": dict(zip(names, row))} for row in np.asarray(x, np.float64).tolist()]
    return [{"multi_hot_ids": np.flatnonzero(row).tolist()} for row in np.asarray(x)]


def outputs(codec, y: np.ndarray) -> list[tuple[dict, str | None, float | None, float | None]]:
    """Per instance: (output JSON, predicted label, its probability, predicted value)."""
    task = codec.task
    if task.name == "regression":
        return [({"value": v}, None, None, v) for v in y[:, 0].astype(np.float64).tolist()]
    win = task.predicted_labels(y)
    scores = task.scores(y).astype(np.float64)
    labels = codec.labels
    out = []
    for i, s in zip(win.tolist(), scores.tolist()):
        out.append(({"label": labels[i], "probability": s[i], "scores": s}, labels[i], s[i], None))
    return out


def rows(e: Entry) -> list[dict]:
    s = e.servable
    codec = s.codec
    ins = inputs(codec, e.x, e.texts) if e.x is not None else []
    outs = outputs(codec, e.y)
    latency_ms = e.latency_s * 1000.0
    return [{"request_id": e.request_id, "instance": i, "ts": e.ts, "model": s.name, "version": s.version,
             "variant": s.variant_name, "arm": e.arm,
             "input": orjson.dumps(ins[i]).decode() if i < len(ins) and ins[i] is not None else None,
             "output": orjson.dumps(o).decode(), "label": label, "confidence": conf, "value": value,
             "latency_ms": latency_ms}
            for i, (o, label, conf, value) in enumerate(outs)]
