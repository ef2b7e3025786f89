"""Input drift of logged inputs against the training data: PSI per feature (Boston, against the training
split), review length and out-of-vocabulary rate (text, against the training figures in the manifest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from audit import stats
from audit.store import Logged


def text_drift(rows: list[Logged], manifest, vdir: Path) -> dict:
    """Tokens per text and OOV share of the logged inputs (texts encoded with the model's encoder; token ids
    as sent), against the training mean of each."""
    enc = manifest.text_encoder(vdir)
    tokens, oov = [], []
    for r in rows:
        obj = json.loads(r.input) if r.input else {}
        if "text" in obj:
            ids = enc.ids(obj["text"])[1:]
        elif "ids" in obj:
            ids = [i for i in obj["ids"] if i != enc.start_char]
        else:
            continue
        tokens.append(len(ids))
        oov.append(sum(i == enc.oov_char for i in ids) / len(ids) if ids else 0.0)
    p = manifest.preprocessing
    if not tokens:
        return {"kind": "text", "n": 0}
    return {
        "kind": "text",
        "n": len(tokens),
        "tokens": {
            "live_mean": float(np.mean(tokens)),
            "live_median": float(np.median(tokens)),
            "training_mean": p.train_mean_tokens,
            "ratio": float(np.mean(tokens)) / p.train_mean_tokens if p.train_mean_tokens else None,
        },
        "oov_rate": {
            "live_mean": float(np.mean(oov)),
            "training": p.train_oov_rate,
            "difference": float(np.mean(oov)) - p.train_oov_rate if p.train_oov_rate is not None else None,
        },
        "live_tokens": tokens,
    }


def tabular_drift(rows: list[Logged], feature_names: list[str], training: np.ndarray | None) -> dict:
    """PSI of each feature's logged values against its training values."""
    live = [json.loads(r.input)["features"] for r in rows if r.input and "features" in json.loads(r.input)]
    if not live:
        return {"kind": "tabular", "n": 0}
    x = np.array([[row[f] for f in feature_names] for row in live], np.float64)
    out = {"kind": "tabular", "n": len(x)}
    if training is None:
        out["psi"] = None
        out["note"] = "give --data-dir (the Keras dataset files) for PSI against the training split"
        return out
    out["psi"] = {f: stats.psi(training[:, i], x[:, i]) for i, f in enumerate(feature_names)}
    return out


def boston_training(data_dir: Path | None) -> np.ndarray | None:
    if data_dir is None:
        return None
    from modelyard.datasets import load_boston

    return load_boston(Path(data_dir)).x_train.astype(np.float64)
