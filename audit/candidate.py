"""The next version against the serving one (``audit report --candidate VERSION``): on the audited rows the new
version did not train on (its manifest's ``training.extra_data`` names those it did), the serving versions'
logged predictions against the new version's, run here with onnxruntime on the logged inputs. Both are scored on
the same rows, so the comparison is paired: McNemar's test for accuracy (statsmodels), the paired t-test on
absolute errors for MAE (scipy)."""

from __future__ import annotations

import json

import numpy as np
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar

from audit import stats
from audit.store import Logged, manifest_of
from modelyard.encoding import multi_hot
from modelyard.errors import ModelyardError
from modelyard.onnxrun import open_session

VARIANT = "onnx_fp32"


def _inputs(rows: list[Logged], manifest, vdir) -> np.ndarray:
    """The logged inputs as the new version's model input."""
    p = manifest.preprocessing
    objs = [json.loads(r.input) for r in rows]
    if p.kind == "tabular":
        return np.array([[o["features"][f] for f in p.feature_names] for o in objs], np.float32)
    enc = manifest.text_encoder(vdir)
    ids = [
        enc.ids(o["text"])
        if "text" in o
        else list(enc.clip_ids(o["ids"]))
        if "ids" in o
        else [enc.start_char, *o["multi_hot_ids"]]
        for o in objs
    ]
    return multi_hot(ids, p.num_words)


def predict(repo, model: str, version: int, rows: list[Logged]) -> tuple[np.ndarray, object]:
    """The new version's raw outputs on ``rows``' inputs, and its manifest."""
    manifest, vdir = manifest_of(repo, model, version)
    rec = manifest.variants.get(VARIANT)
    if rec is None:
        raise ModelyardError(
            f"{model} version {version} has no {VARIANT} variant: export it first (modelyard export {model})"
        )
    sess = open_session(vdir / rec.path)
    x = _inputs(rows, manifest, vdir)
    return sess.run(None, {sess.get_inputs()[0].name: x})[0], manifest


def compare(repo, model: str, version: int, labelled: list[Logged], task) -> dict:
    """Serving (as logged) against version ``version`` on the audited rows it did not train on."""
    manifest, _ = manifest_of(repo, model, version)
    trained = {tuple(k) for k in (manifest.training.get("extra_data") or {}).get("audited", [])}
    rows = [r for r in labelled if r.arm != "shadow" and r.input and (r.request_id, r.instance) not in trained]
    if not rows:
        raise ModelyardError(f"no audited prediction of '{model}' that version {version} did not train on")
    y, _ = predict(repo, model, version, rows)
    out = {
        "version": version,
        "n": len(rows),
        "excluded_trained_on": len(labelled) - len(rows),
        "serving_versions": sorted({r.version for r in rows}),
    }
    if not task.predicts_labels:
        truth = np.array([r.truth_value for r in rows])
        e_old = np.array([r.value for r in rows]) - truth
        e_new = y[:, 0].astype(np.float64) - truth
        t = sps.ttest_rel(np.abs(e_new), np.abs(e_old))
        return {
            **out,
            "serving": stats.mae(e_old),
            "new": stats.mae(e_new),
            "difference": float(np.abs(e_new).mean() - np.abs(e_old).mean()),
            "p_value": float(t.pvalue),
            "test": "paired t-test",
        }
    labels = task.labels
    truth = np.array([labels.index(r.truth_label) for r in rows])
    old = np.array([labels.index(r.label) for r in rows]) == truth
    new = task.predicted_labels(y) == truth
    table = [[int((old & new).sum()), int((old & ~new).sum())], [int((~old & new).sum()), int((~old & ~new).sum())]]
    test = mcnemar(table, exact=table[0][1] + table[1][0] < 25)
    return {
        **out,
        "serving": stats.accuracy(int(old.sum()), len(rows)),
        "new": stats.accuracy(int(new.sum()), len(rows)),
        "difference": float(new.mean() - old.mean()),
        "p_value": float(test.pvalue),
        "test": "McNemar",
        "table": table,
    }
