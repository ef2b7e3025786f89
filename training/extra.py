"""``modelyard train --extra-data batch.csv``: audited production rows (the CSV of ``modelyard audit sample``, its
``label`` or ``value`` column filled in) added to the training split only, never to the test split, so that the
new version is measured as before; the rows it trained on are named in its manifest (``training.extra_data``),
so that ``modelyard audit report --candidate`` compares it with the serving version on audited rows it did not
train on."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from modelyard.datasets import Dataset
from modelyard.encoding import TextEncoder
from modelyard.errors import ModelyardError

SHOWN_ERRORS = 20


@dataclass
class Extra:
    x: list | np.ndarray
    """Token-id lists (start mark first) for a text model, ``[N, 13]`` float32 for Boston."""
    y: np.ndarray
    keys: list[tuple[str, int]]
    """``(request_id, instance)`` of each row: the logged predictions they came from."""
    record: dict
    """What goes into the manifest's ``training.extra_data``."""


def _text_row(text: str, encoder: TextEncoder, num_words: int) -> list[int]:
    """The input column: the text itself, or ``{"ids": [...]}`` when the client sent token ids."""
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and set(obj) == {"ids"}:
            return [encoder.start_char] + [i if i < num_words else encoder.oov_char for i in obj["ids"][1:]]
    return encoder.ids(text)


def _features(text: str, names: list[str]) -> list[float]:
    obj = json.loads(text)
    feats = obj["features"]
    return [float(feats[n]) for n in names]


def read_extra(
    path: Path,
    model: str,
    labels: list[str] | None,
    vocab_file: Path | None,
    num_words: int,
    feature_names: list[str] | None = None,
) -> Extra:
    """The filled-in rows of ``path`` for ``model``, checked: a file with any bad row is refused, naming each."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as e:
        raise ModelyardError(f"--extra-data {path}: {e.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise ModelyardError(f"--extra-data {path}: not a UTF-8 CSV file ({e})") from None
    answer = "label" if labels else "value"
    if rows and not {"request_id", "instance", "model", "input", answer} <= set(rows[0]):
        raise ModelyardError(
            f"--extra-data {path}: needs the columns request_id, instance, model, input and "
            f"{answer} (the CSV of `modelyard audit sample`, filled in)"
        )
    encoder = TextEncoder.from_vocab_file(vocab_file, num_words) if labels else None
    xs, ys, keys, errors = [], [], [], []
    for line, row in enumerate(rows, start=2):
        given = (row.get(answer) or "").strip()
        if not given:
            continue
        try:
            if row["model"].strip() != model:
                raise ValueError(f"model '{row['model']}', not {model}")
            key = (row["request_id"].strip(), int(row["instance"]))
            if labels:
                if given in labels:
                    y = labels.index(given)
                elif given.isascii() and given.isdigit() and int(given) < len(labels):
                    y = int(given)
                else:
                    raise ValueError(f"unknown label '{given[:64]}' (a label name or index 0..{len(labels) - 1})")
                x = _text_row(row["input"], encoder, num_words)
            else:
                y = float(given)
                x = _features(row["input"], feature_names)
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
            errors.append(f"line {line}: {e}")
            continue
        xs.append(x)
        ys.append(y)
        keys.append(key)
    if errors:
        more = f"\n  ... and {len(errors) - SHOWN_ERRORS} more" if len(errors) > SHOWN_ERRORS else ""
        raise ModelyardError(
            f"--extra-data {path}: {len(errors)} bad row(s):\n  " + "\n  ".join(errors[:SHOWN_ERRORS]) + more
        )
    if not xs:
        raise ModelyardError(f"--extra-data {path}: no row has its {answer} filled in")
    y = np.array(ys, np.int64 if labels else np.float32)
    x = xs if labels else np.array(xs, np.float32)
    record = {"file": Path(path).name, "sha256": digest, "rows": len(keys), "audited": [list(k) for k in keys]}
    return Extra(x, y, keys, record)


def with_extra(ds: Dataset, extra: Extra) -> Dataset:
    """``ds`` with the extra rows at the front of its training split (the held-out validation share is the end of
    the training split, so they are trained on) and its test split untouched."""
    if isinstance(ds.x_train, np.ndarray):
        x_train = np.concatenate([np.asarray(extra.x, ds.x_train.dtype), ds.x_train])
    else:
        x_train = list(extra.x) + list(ds.x_train)
    return replace(ds, x_train=x_train, y_train=np.concatenate([extra.y.astype(ds.y_train.dtype), ds.y_train]))
