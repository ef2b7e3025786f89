"""Logged requests -> database rows, one per instance, in the writer thread (never on the event loop: the
request path hands over references only, :class:`Entry`). A batch's outputs are converted per servable in one
array operation, and rows are plain tuples in :data:`COLUMNS` order for the driver's ``executemany``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from modelyard.encoding import IdRows

COLUMNS = (
    "request_id",
    "instance",
    "ts",
    "model",
    "version",
    "variant",
    "arm",
    "input",
    "output",
    "label",
    "confidence",
    "value",
    "latency_ms",
)
RID_MAX = 128
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


@dataclass(slots=True)
class Entry:
    """What the request path hands to the writer: references, no copies, no conversion."""

    request_id: str
    ts: float
    servable: object
    """:class:`serving.registry.Servable` that answered."""
    arm: str
    x: object
    """The model input: an ndarray ``[N, width]`` or :class:`IdRows` (token ids); None for a shadow's answer."""
    texts: list | None
    """The raw texts as sent (str, or UTF-8 bytes from a binary transport), when the request sent texts."""
    y: np.ndarray
    latency_s: float


def _plain(obj):
    """What orjson's numpy support leaves to us: arrays that are not C-contiguous, or of another dtype."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _json(obj) -> str:
    return orjson.dumps(obj, _plain, _NUMPY).decode()


def inputs(codec, x, texts) -> list[str | None]:
    """Each instance's input as the client sent it (JSON): review text, token ids, named features (or the
    multi-hot vector's set positions when that is what was sent)."""
    if x is None:
        return []
    dumps = orjson.dumps
    if texts is not None:
        return [dumps({"text": t.decode("utf-8", "replace") if isinstance(t, bytes) else t}).decode() for t in texts]
    if isinstance(x, IdRows):
        return [dumps({"ids": r}, _plain, _NUMPY).decode() for r in x.ids]
    if codec.kind == "tabular":
        names = codec.feature_names
        return [_json({"features": dict(zip(names, row))}) for row in np.asarray(x, np.float64).tolist()]
    return [_json({"multi_hot_ids": np.flatnonzero(row)}) for row in np.asarray(x)]


def outputs(codec, y: np.ndarray) -> list[tuple[str, str | None, float | None, float | None]]:
    """Per row of ``y``: (output JSON, predicted label, its probability, predicted value)."""
    task = codec.task
    if not task.predicts_labels:
        return [(_json({"value": v}), None, None, v) for v in y[:, 0].astype(np.float64).tolist()]
    win = task.predicted_labels(y).tolist()
    scores = task.scores(y).astype(np.float64)
    conf = scores[np.arange(len(win)), win].tolist()
    labels = codec.labels
    dumps = orjson.dumps
    return [
        (dumps({"label": labels[w], "probability": c, "scores": s}, _plain, _NUMPY).decode(), labels[w], c, None)
        for w, c, s in zip(win, conf, scores)
    ]


def rows(entries: list[Entry]) -> tuple[list[tuple], dict[str, int]]:
    """Rows of ``entries`` (in :data:`COLUMNS` order), and how many per model."""
    groups: dict[int, list[Entry]] = {}
    for e in entries:
        groups.setdefault(id(e.servable), []).append(e)
    out: list[tuple] = []
    per_model: dict[str, int] = {}
    for es in groups.values():
        s = es[0].servable
        outs = outputs(s.codec, np.concatenate([e.y for e in es]) if len(es) > 1 else es[0].y)
        k = 0
        codec, name, version, variant = s.codec, s.name, s.version, s.variant_name
        for e in es:
            n = len(e.y)
            ins = inputs(codec, e.x, e.texts) or [None] * n
            rid, ms = e.request_id[:RID_MAX], e.latency_s * 1000.0
            for i, (inp, (o, label, conf, value)) in enumerate(zip(ins, outs[k : k + n])):
                out.append((rid, i, e.ts, name, version, variant, e.arm, inp, o, label, conf, value, ms))
            k += n
        per_model[name] = per_model.get(name, 0) + k
    return out, per_model
