"""``modelyard audit sample``: a stratified sample of logged predictions that have no ground truth yet, as a
CSV for annotators (the input, the prediction, and one empty column to fill in)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from audit.store import Logged

VALUE_BINS = 4
"""Regression: predictions are stratified by quartile of the predicted value (there are no classes)."""


def stratum_keys(rows: list[Logged], regression: bool) -> list[tuple[str, str]]:
    """(predicted class, UTC day) of each row; for a regression, the predicted value's quartile."""
    if regression and rows:
        edges = np.quantile([r.value for r in rows], np.linspace(0, 1, VALUE_BINS + 1)[1:-1])
        classes = [f"q{int(np.searchsorted(edges, r.value, side='right')) + 1}" for r in rows]
    else:
        classes = [r.label or "" for r in rows]
    days = [dt.datetime.fromtimestamp(r.ts, dt.timezone.utc).date().isoformat() for r in rows]
    return list(zip(classes, days))


def allocate(sizes: dict, n: int) -> dict:
    """Draws per stratum, proportional to its size (largest remainder), at least one per stratum while
    ``n`` allows, never more than it holds."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    keys = sorted(sizes, key=lambda k: -sizes[k])
    base = {k: min(sizes[k], 1) if n >= len(keys) else 0 for k in keys}
    left = n - sum(base.values())
    quota = {k: left * (sizes[k] - base[k]) / (total - sum(base.values())) for k in keys}
    take = {k: base[k] + int(quota[k]) for k in keys}
    for k in sorted(keys, key=lambda k: -(quota[k] - int(quota[k])))[: n - sum(take.values())]:
        take[k] += 1
    return take


def draw(rows: list[Logged], n: int, regression: bool, seed: int) -> list[Logged]:
    """``n`` rows, stratified by predicted class (or value quartile) and day, in time order."""
    strata = defaultdict(list)
    for row, key in zip(rows, stratum_keys(rows, regression)):
        strata[key].append(row)
    rng = np.random.default_rng(seed)
    chosen = []
    for key, k in allocate({key: len(v) for key, v in strata.items()}, n).items():
        members = strata[key]
        chosen += [members[i] for i in sorted(rng.choice(len(members), size=k, replace=False))]
    return sorted(chosen, key=lambda r: (r.ts, r.request_id, r.instance))


def input_text(row: Logged) -> str:
    """What an annotator reads: the review or newswire text itself, else the input as JSON."""
    if row.input is None:
        return ""
    obj = json.loads(row.input)
    return obj["text"] if set(obj) == {"text"} else json.dumps(obj, ensure_ascii=False)


COLUMNS = ("request_id", "instance", "model", "version", "variant", "arm", "time", "input", "predicted", "probability")
"""An audit batch's columns before the annotator's (``label``, or ``value`` for a regression)."""


def write_csv(path: Path, model: str, rows: list[Logged], regression: bool) -> None:
    """The batch for annotators, written atomically; its last column (``label`` or ``value``) is left empty."""
    header = [*COLUMNS, "value" if regression else "label"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            for r in rows:
                when = dt.datetime.fromtimestamp(r.ts, dt.timezone.utc).isoformat(timespec="seconds")
                predicted = f"{r.value:.4g}" if regression else r.label
                prob = "" if r.confidence is None else f"{r.confidence:.4f}"
                w.writerow(
                    [
                        r.request_id,
                        r.instance,
                        model,
                        r.version,
                        r.variant,
                        r.arm,
                        when,
                        input_text(r),
                        predicted,
                        prob,
                        "",
                    ]
                )
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
