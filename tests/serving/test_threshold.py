"""IMDB's decision threshold from the serving config: the label on V2 (REST), the prediction counter, and a
config reload that moves it; probabilities are untouched."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from serving_helpers import in_process, reference

from modelyard.errors import ModelyardError
from serving.serving_config import ServeConfig


def _infer(client, texts):
    r = client.post(
        "/v2/models/imdb/infer",
        json={"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]},
    )
    assert r.status_code == 200, r.text
    outs = {o["name"]: o["data"] for o in r.json()["outputs"]}
    return np.asarray(outs["probability"], np.float32), outs["label"], outs["label_probability"]


def _positive_count(client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("modelyard_predictions_total{") and 'model="imdb"' in line and "positive" in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_threshold_from_config_sets_labels_and_follows_a_reload(fixture_root, tmp_path):
    repo = tmp_path / "models"
    shutil.copytree(fixture_root / "repo", repo)
    texts = reference(fixture_root, "imdb")["texts"].tolist()
    cfg = tmp_path / "serving.yaml"
    cfg.write_text("models:\n  imdb:\n    threshold: 0.5\n")
    with in_process(repo, config=cfg, enable_admin=True) as client:
        p, labels, _ = _infer(client, texts)
        assert labels == ["positive" if x >= 0.5 else "negative" for x in p]
        cut = float(np.sort(p)[len(p) // 2])  # half the texts at or above it
        assert 0 < cut < 1 and cut != 0.5
        cfg.write_text(f"models:\n  imdb:\n    threshold: {cut!r}\n")
        os.utime(cfg, ns=(1, 1))  # a new mtime for certain: the registry reloads on a changed mtime
        assert client.post("/admin/reload").status_code == 200
        before = _positive_count(client)
        p2, labels2, label_p = _infer(client, texts)
        np.testing.assert_array_equal(p2, p)
        expected = ["positive" if x >= cut else "negative" for x in p]
        assert labels2 == expected and labels2 != labels
        np.testing.assert_allclose(label_p, [x if x >= cut else 1 - x for x in p], atol=1e-6)
        assert _positive_count(client) - before == expected.count("positive")


@pytest.mark.parametrize("value", [0, 1, 1.5, "high"])
def test_threshold_outside_zero_one_is_a_config_error(tmp_path, value):
    cfg = tmp_path / "serving.yaml"
    cfg.write_text(f"models:\n  imdb:\n    threshold: {value}\n")
    with pytest.raises(ModelyardError, match="models.imdb.threshold"):
        ServeConfig.read(cfg)
