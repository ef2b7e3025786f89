"""Must-show, on the real data: IMDB served with a 50/50 split between two variants of the exported model
(onnx_fp32 and onnx_int8), 2,000 real test reviews through the server (TF Serving REST and V2 REST), the true
labels of 500 of them fed back (250 through the feedback route, 250 through an audit CSV), and the report's
live accuracy per arm equal to the accuracy each arm's model has, run in process, on exactly those reviews,
with its Wilson interval. Once with SQLite, once with a real PostgreSQL server."""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from fitted_models import fitted_repository
from tests.serving.serving_helpers import in_process

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
ARMS = ("onnx_fp32", "onnx_int8")
N_REVIEWS, N_FEEDBACK, N_AUDIT = 2000, 250, 250


@pytest.fixture(scope="module")
def reviews(data_dir):
    from modelyard.datasets import read_imdb_raw

    pairs = list(read_imdb_raw(data_dir, "test"))
    pick = np.random.default_rng(14).choice(len(pairs), N_REVIEWS, replace=False)
    return [pairs[i] for i in pick]


@pytest.fixture(scope="module")
def imdb_repo(tmp_path_factory, data_dir):
    """The exported IMDB model of ./models when `make models` made it; else (a clean clone, CI) a small genuine one
    fitted on the real training split, with the same two ONNX variants (tests/fitted_models.py)."""
    d = tmp_path_factory.mktemp("wild")
    if (MODELS / "imdb" / "1" / "onnx" / "int8.onnx").is_file():
        shutil.copytree(MODELS / "imdb" / "1", d / "models" / "imdb" / "1")
    else:
        fitted_repository(d / "models", data_dir, models=("imdb",))
    cfg = d / "serving.json"
    cfg.write_text(json.dumps({"models": {"imdb": {"traffic": [{"variant": v, "weight": 50} for v in ARMS]}}}))
    return d / "models", cfg


def in_process_predictions(repo: Path, variant: str, texts: list[str]) -> np.ndarray:
    """The arm's model run directly with onnxruntime on the texts, encoded as training encodes them."""
    import onnxruntime as ort

    from modelyard.encoding import multi_hot
    from modelyard.manifest import Manifest

    vdir = repo / "imdb" / "1"
    m = Manifest.read(vdir / "manifest.json")
    enc = m.text_encoder(vdir)
    sess = ort.InferenceSession(str(vdir / m.variants[variant].path), providers=["CPUExecutionProvider"])
    x = multi_hot([enc.ids(t) for t in texts], m.preprocessing.num_words)
    return (sess.run(None, {sess.get_inputs()[0].name: x})[0][:, 0] >= 0.5).astype(int)


@pytest.mark.realdata
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_live_accuracy_per_arm_equals_in_process_accuracy(backend, reviews, imdb_repo, tmp_path, request):
    from audit import stats
    from audit.importer import import_batch
    from audit.report import build, write
    from audit.sample import draw, write_csv
    from audit.store import predictions, task_of
    from serving.predlog import schema

    repo, cfg = imdb_repo
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'log.db'}"
    t0 = time.monotonic()
    arm_of, truth = {}, {}
    with in_process(repo, config=cfg, prediction_log=url) as client:
        for i, (text, label) in enumerate(reviews):
            rid = f"{backend}-{i}"
            if i % 2:
                r = client.post(
                    "/v2/models/imdb/infer",
                    json={"id": rid, "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [text]}]},
                )
                assert r.status_code == 200, r.text
                assert r.json()["id"] == rid
                arm_of[rid] = r.json()["parameters"]["variant"]
            else:
                r = client.post("/v1/models/imdb:predict", json={"instances": [text]}, headers={"X-Request-Id": rid})
                assert r.status_code == 200, r.text
                assert r.headers["x-request-id"] == rid
                arm_of[rid] = r.headers["x-model-variant"]
            truth[rid] = label
        assert set(arm_of.values()) == set(ARMS)

        engine = schema.connect(url)
        p = schema.predictions
        deadline = time.monotonic() + 30
        while engine.connect().execute(select(func.count()).select_from(p)).scalar() < N_REVIEWS:
            assert time.monotonic() < deadline, "the writer did not write every row"
            time.sleep(0.1)

        # 250 labels through the feedback route (batch form; label as index), in two calls
        fed = list(arm_of)[:N_FEEDBACK]
        for part in (fed[:100], fed[100:]):
            r = client.post(
                "/v2/models/imdb/feedback", json={"items": [{"request_id": rid, "label": truth[rid]} for rid in part]}
            )
            assert r.status_code == 200 and r.json()["counts"]["stored"] == len(part), r.text

    # 250 more through an audit: a stratified sample of the unlabelled rows, filled in, imported
    unlabelled = predictions(engine, "imdb", labelled=False)
    assert len(unlabelled) == N_REVIEWS - N_FEEDBACK
    batch = tmp_path / "batch.csv"
    write_csv(batch, "imdb", draw(unlabelled, N_AUDIT, False, seed=1), False)
    with open(batch, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == N_AUDIT and all(r["label"] == "" and r["input"] for r in rows)
    for r in rows:
        r["label"] = ["negative", "positive"][truth[r["request_id"]]]
    with open(batch, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    done = import_batch(engine, batch, lambda m: task_of(repo, m))
    assert (done.stored, done.replaced, done.blank) == (N_AUDIT, 0, 0)

    report = build(engine, repo, "imdb", None)
    write(report, tmp_path / "report")
    assert report["labelled"] == N_FEEDBACK + N_AUDIT
    labelled = [rid for rid in arm_of if rid in set(fed) | {r["request_id"] for r in rows}]
    arms = {a["arm"]: a for a in report["arms"]}
    assert set(arms) == {f"v1/{v}" for v in ARMS}
    for variant in ARMS:
        ids = [rid for rid in labelled if arm_of[rid] == variant]
        pred = in_process_predictions(repo, variant, [reviews[int(rid.rsplit("-", 1)[1])][0] for rid in ids])
        correct = int((pred == np.array([truth[rid] for rid in ids])).sum())
        live = arms[f"v1/{variant}"]
        assert (live["n"], live["correct"]) == (len(ids), correct)
        assert live["accuracy"] == correct / len(ids)
        assert live["ci95"] == pytest.approx(stats.accuracy(correct, len(ids))["ci95"])
        assert live["ci95"][0] < live["accuracy"] < live["ci95"][1]
        assert live["accuracy"] > 0.8  # the real model on real reviews
    ab = report["ab"]["comparisons"][0]
    assert report["ab"]["control"] == "v1/onnx_fp32" and ab["treatment"] == "v1/onnx_int8"
    assert 0 <= ab["p_value"] <= 1 and ab["ci95"][0] <= ab["difference"] <= ab["ci95"][1]
    assert ab["labelled_more"] > 0
    assert report["drift"]["n"] == N_REVIEWS and 0 < report["drift"]["oov_rate"]["live_mean"] < 0.2
    for f in ("report.json", "report.html", "accuracy_per_arm.png", "confusion.png", "calibration.png", "drift.png"):
        assert (tmp_path / "report" / f).stat().st_size > 0
    engine.dispose()
    assert time.monotonic() - t0 < 120
