"""``modelyard audit`` on a log written here (SQLite): sampling, importing, reporting, the A/B and shadow
statistics, and its errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from modelyard_cli import app
from serving.predlog import schema

DAY = 86400.0
T0 = 1_790_000_000.0  # a fixed UTC time: days in these tests are deterministic


def _row(rid, ts, label, p, version=1, variant="onnx_fp32", arm="split", model="imdb", text="some review"):
    scores = [1 - p, p]
    return {
        "request_id": rid,
        "instance": 0,
        "ts": ts,
        "model": model,
        "version": version,
        "variant": variant,
        "arm": arm,
        "input": None if arm == "shadow" else json.dumps({"text": text}),
        "output": json.dumps({"label": label, "probability": max(scores), "scores": scores}),
        "label": label,
        "confidence": max(scores),
        "value": None,
        "latency_ms": 1.0,
    }


def cli(*args: str) -> tuple[int, str]:
    """``modelyard`` as ``main()`` runs it: a ModelyardError is exit code 2 and its message."""
    from modelyard.errors import ModelyardError

    res = CliRunner().invoke(app, list(args))
    if isinstance(res.exception, ModelyardError):
        return 2, str(res.exception)
    return res.exit_code, res.output


@pytest.fixture
def log(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    return url, schema.connect(url)


def _fill(engine, rows):
    with engine.begin() as c:
        c.execute(insert(schema.predictions), rows)


def test_allocation_is_proportional_and_covers_every_stratum():
    from audit.sample import allocate

    got = allocate({"a": 80, "b": 15, "c": 5}, 20)
    assert sum(got.values()) == 20 and got["a"] > got["b"] > 0 and got["c"] >= 1
    assert allocate({"a": 3, "b": 2}, 10) == {"a": 3, "b": 2}


def test_sample_draws_unlabelled_rows_by_class_and_day(log, tmp_path, fixture_root):
    url, engine = log
    rows = [
        _row(f"r{i}", T0 + (i % 3) * DAY, "positive" if i % 4 else "negative", 0.9 if i % 4 else 0.1)
        for i in range(120)
    ]
    _fill(engine, rows)
    with engine.begin() as c:  # r0..r9 already have ground truth: never drawn
        c.execute(
            insert(schema.ground_truth),
            [
                {
                    "model": "imdb",
                    "request_id": f"r{i}",
                    "instance": 0,
                    "label": "positive",
                    "source": "feedback",
                    "ts": T0,
                }
                for i in range(10)
            ],
        )
    out = tmp_path / "batch.csv"
    code, text = cli(
        "audit",
        "sample",
        "--model",
        "imdb",
        "--n",
        "30",
        "--out",
        str(out),
        "--prediction-log",
        url,
        "--repo",
        str(fixture_root / "repo"),
    )
    assert code == 0, text
    with open(out, newline="") as f:
        got = list(csv.DictReader(f))
    assert len(got) == 30 and list(got[0])[-1] == "label" and all(r["label"] == "" for r in got)
    assert not {r["request_id"] for r in got} & {f"r{i}" for i in range(10)}
    assert got[0]["input"] == "some review"
    strata = {(r["predicted"], r["time"][:10]) for r in got}
    assert len(strata) == 6  # 2 classes x 3 days, each represented
    negatives = sum(r["predicted"] == "negative" for r in got)
    assert 5 <= negatives <= 10  # a quarter of the rows are negative


def test_import_stores_all_or_nothing_and_names_every_bad_row(log, tmp_path, fixture_root):
    url, engine = log
    _fill(engine, [_row(f"r{i}", T0, "positive", 0.8) for i in range(4)])
    header = ["request_id", "instance", "model", "input", "predicted", "label"]
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(
            [
                ["r0", 0, "imdb", "x", "positive", "positive"],
                ["r1", 0, "imdb", "x", "positive", "meh"],
                ["nope", 0, "imdb", "x", "positive", "1"],
                ["r2", "zero", "imdb", "x", "positive", "0"],
                ["r3", 0, "imdb", "x", "positive", ""],
            ]
        )
    code, text = cli("audit", "import", str(bad), "--prediction-log", url, "--repo", str(fixture_root / "repo"))
    assert code == 2
    assert "3 bad row(s), nothing stored" in text
    assert "line 3: label: unknown label 'meh'" in text
    assert "line 4: no logged prediction of 'imdb' has request id 'nope'" in text
    assert "line 5: instance 'zero' is not a number" in text
    with engine.connect() as c:
        assert c.execute(select(schema.ground_truth)).all() == []

    good = tmp_path / "good.csv"
    with open(good, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(
            [
                ["r0", 0, "imdb", "x", "positive", "negative"],
                ["r1", 0, "imdb", "x", "positive", "1"],
                ["r3", 0, "imdb", "x", "positive", ""],
            ]
        )
    for expected in ("2 stored, 0 replaced", "0 stored, 2 replaced"):
        code, text = cli("audit", "import", str(good), "--prediction-log", url, "--repo", str(fixture_root / "repo"))
        assert code == 0, text
        assert expected in text and "1 left blank" in text
    with engine.connect() as c:
        got = {r.request_id: (r.label, r.source) for r in c.execute(select(schema.ground_truth))}
    assert got == {"r0": ("negative", "audit:good.csv"), "r1": ("positive", "audit:good.csv")}


def test_report_arms_ab_shadow_and_files(log, tmp_path, fixture_root):
    url, engine = log
    rng = np.random.default_rng(0)
    rows, truth = [], []
    for i in range(400):
        variant = "onnx_fp32" if i % 2 else "tflite_fp32"
        right = rng.random() < (0.9 if variant == "onnx_fp32" else 0.8)
        p = 0.9 if i % 3 else 0.2
        label = "positive" if p >= 0.5 else "negative"
        rows.append(_row(f"r{i}", T0 + i, label, p, variant=variant))
        rows.append(
            _row(f"r{i}", T0 + i, label if i % 10 else "negative", p if i % 10 else 0.1, version=2, arm="shadow")
        )
        truth.append(
            {
                "model": "imdb",
                "request_id": f"r{i}",
                "instance": 0,
                "source": "feedback",
                "ts": T0,
                "label": label if right else ("negative" if label == "positive" else "positive"),
            }
        )
    _fill(engine, rows)
    with engine.begin() as c:
        c.execute(insert(schema.ground_truth), truth)
    out = tmp_path / "report"
    code, text = cli(
        "audit",
        "report",
        "--model",
        "imdb",
        "--out",
        str(out),
        "--prediction-log",
        url,
        "--repo",
        str(fixture_root / "repo"),
    )
    assert code == 0, text
    r = json.loads((out / "report.json").read_text())
    arms = {a["arm"]: a for a in r["arms"]}
    assert set(arms) == {"v1/onnx_fp32", "v1/tflite_fp32", "shadow:v2/onnx_fp32"}
    for name, a in arms.items():
        assert a["n"] == (400 if name.startswith("shadow") else 200)
        assert a["ci95"][0] < a["accuracy"] < a["ci95"][1]
    ab = r["ab"]
    assert ab["control"] == "v1/onnx_fp32"  # the lowest version, then the variant name
    c = ab["comparisons"][0]
    assert c["treatment"] == "v1/tflite_fp32" and c["n_control"] == c["n_treatment"] == 200
    assert c["difference"] == pytest.approx(arms["v1/tflite_fp32"]["accuracy"] - arms["v1/onnx_fp32"]["accuracy"])
    assert 0 < c["p_value"] < 1 and c["labelled_needed"] > 400
    shadows = {(x["primary"], x["shadow"]): x for x in r["shadow"]}  # paired per primary arm
    assert set(shadows) == {("v1/onnx_fp32", "shadow:v2/onnx_fp32"), ("v1/tflite_fp32", "shadow:v2/onnx_fp32")}
    assert [x["n"] for x in shadows.values()] == [200, 200]
    assert sum(x["disagreements"] for x in shadows.values()) == len([i for i in range(400) if i % 10 == 0 and i % 3])
    sh = shadows[("v1/tflite_fp32", "shadow:v2/onnx_fp32")]  # even requests: where the shadow disagrees
    assert sh["agreement"] == 1 - sh["disagreements"] / 200 and sh["ci95"][1] <= 1
    assert sh["disagreeing_inputs"][0]["input"] == {"text": "some review"}
    assert sh["disagreeing_inputs"][0]["primary"] == "positive" and sh["disagreeing_inputs"][0]["shadow"] == "negative"
    assert sum(map(sum, r["confusion"]["v1/onnx_fp32"])) == 200
    assert r["calibration"]["v1/onnx_fp32"]["bins"]
    html = (out / "report.html").read_text()
    assert "A/B outcome" in html and "Wilson" in html and "<img" in html
    for f in ("accuracy_per_arm.png", "confusion.png", "calibration.png", "drift.png"):
        assert (out / f).read_bytes()[:4] == b"\x89PNG"


def test_boston_report_is_mae_with_bootstrap_interval_and_welch(log, tmp_path, fixture_root):
    url, engine = log
    from audit.report import build

    from modelyard.manifest import Manifest

    names = Manifest.read(fixture_root / "repo" / "boston" / "1" / "manifest.json").preprocessing.feature_names
    rng = np.random.default_rng(1)
    rows, truth = [], []
    for i in range(60):
        v = float(rng.uniform(10, 40))
        variant = "onnx_fp32" if i % 2 else "tflite_fp32"
        rows.append(
            {
                "request_id": f"b{i}",
                "instance": 0,
                "ts": T0,
                "model": "boston",
                "version": 1,
                "variant": variant,
                "arm": "split",
                "input": json.dumps({"features": {f: 1.0 for f in names}}),
                "output": json.dumps({"value": v}),
                "label": None,
                "confidence": None,
                "value": v,
                "latency_ms": 1.0,
            }
        )
        truth.append(
            {
                "model": "boston",
                "request_id": f"b{i}",
                "instance": 0,
                "source": "feedback",
                "ts": T0,
                "value": v + float(rng.normal(0, 3 if i % 2 else 5)),
                "label": None,
            }
        )
    _fill(engine, rows)
    with engine.begin() as c:
        c.execute(insert(schema.ground_truth), truth)
    r = build(engine, fixture_root / "repo", "boston", None)
    assert r["metric"] == "mae"
    for a in r["arms"]:
        assert a["interval"] == "bootstrap" and a["ci95"][0] < a["mae"] < a["ci95"][1]
    assert r["ab"]["comparisons"][0]["test"] == "Welch's t-test"
    assert r["drift"]["psi"] is None and "--data-dir" in r["drift"]["note"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["audit", "report", "--model", "imdb", "--out", "x"], "no prediction log"),
        (["audit", "sample", "--model", "imdb", "--out", "x", "--since", "yesterday"], "is not a date"),
        (["audit", "sample", "--model", "nomodel", "--out", "x"], "unknown model 'nomodel'"),
    ],
)
def test_cli_errors_are_one_line(args, message, log, fixture_root, monkeypatch):
    url, _ = log
    if "no prediction log" not in message:
        args = [*args, "--prediction-log", url]
    monkeypatch.delenv("MODELYARD_PREDICTION_LOG", raising=False)
    code, text = cli(*args, "--repo", str(fixture_root / "repo"))
    assert code == 2 and message in text, text


def test_an_empty_log_is_a_clear_error(log, fixture_root, tmp_path):
    url, _ = log
    code, text = cli(
        "audit",
        "report",
        "--model",
        "imdb",
        "--out",
        str(tmp_path / "r"),
        "--prediction-log",
        url,
        "--repo",
        str(fixture_root / "repo"),
    )
    assert code == 2 and "holds no prediction of 'imdb'" in text
    assert not (tmp_path / "r").exists()


def test_candidate_is_compared_on_audited_rows_it_did_not_train_on(log, tmp_path, fixture_root):
    """Version 2 (another tiny IMDB model) against what version 1 answered, as logged: the rows version 2's
    manifest says it trained on are left out, and its accuracy is its own model's, run here."""
    import shutil

    import onnxruntime as ort

    from audit.report import build
    from modelyard.encoding import multi_hot
    from modelyard.manifest import Manifest

    url, engine = log
    repo = tmp_path / "models"
    shutil.copytree(fixture_root / "repo" / "imdb", repo / "imdb")
    shutil.copytree(fixture_root / "spare" / "imdb" / "1", repo / "imdb" / "2")
    mpath = repo / "imdb" / "2" / "manifest.json"
    m = json.loads(mpath.read_text())
    m["version"] = 2
    m["training"]["extra_data"] = {
        "file": "batch.csv",
        "sha256": "0" * 64,
        "rows": 3,
        "audited": [["r0", 0], ["r1", 0], ["r2", 0]],
    }
    mpath.write_text(json.dumps(m))
    texts = ["a great movie", "the worst plot", "wonderful acting", "boring and awful", "best story", "bad film"]
    rng = np.random.default_rng(3)
    rows, truth = [], []
    for i in range(60):
        t = texts[i % len(texts)]
        label = "positive" if rng.random() < 0.5 else "negative"
        rows.append(
            _row(f"r{i}", T0 + i, label, 0.8 if label == "positive" else 0.2, variant="onnx_fp32", arm="latest", text=t)
        )
        truth.append(
            {
                "model": "imdb",
                "request_id": f"r{i}",
                "instance": 0,
                "source": "audit:batch.csv",
                "ts": T0,
                "label": "positive" if any(w in t for w in ("great", "wonderful", "best")) else "negative",
            }
        )
    _fill(engine, rows)
    with engine.begin() as c:
        c.execute(insert(schema.ground_truth), truth)
    c = build(engine, repo, "imdb", None, candidate=2)["candidate"]
    assert (c["n"], c["excluded_trained_on"], c["serving_versions"], c["test"]) == (57, 3, [1], "McNemar")
    v2 = Manifest.read(mpath)
    enc = v2.text_encoder(repo / "imdb" / "2")
    sess = ort.InferenceSession(str(repo / "imdb" / "2" / "onnx" / "fp32.onnx"), providers=["CPUExecutionProvider"])
    kept = [(r, g) for r, g in zip(rows, truth) if r["request_id"] not in ("r0", "r1", "r2")]
    x = multi_hot([enc.ids(json.loads(r["input"])["text"]) for r, _ in kept], v2.preprocessing.num_words)
    pred = np.where(sess.run(None, {sess.get_inputs()[0].name: x})[0][:, 0] >= 0.5, "positive", "negative")
    assert c["new"]["correct"] == sum(p == g["label"] for p, (_, g) in zip(pred, kept))
    assert c["serving"]["correct"] == sum(r["label"] == g["label"] for r, g in kept)
    assert 0 <= c["p_value"] <= 1 and sum(map(sum, c["table"])) == 57
    from modelyard.errors import ModelyardError

    with pytest.raises(ModelyardError, match="has no version 9"):
        build(engine, repo, "imdb", None, candidate=9)
