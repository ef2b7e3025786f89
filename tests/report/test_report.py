"""``modelyard report`` on the real test splits: the figures on the page are the models' real ones (checked against
the numpy models the ONNX files were written from), the serving threshold moves them, the report is published
inside the manifest's sha256 list, and a failure leaves the version as it was."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from modelyard.datasets import load_boston, load_reuters, read_imdb_raw
from modelyard.encoding import TextEncoder, multi_hot
from modelyard.repository import ModelRepository

pytestmark = pytest.mark.realdata


def _report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", "report", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def reported(real_models, data_dir, tmp_path_factory):
    """All three reports, with IMDB's threshold 0.7 from a serving config."""
    root = tmp_path_factory.mktemp("reported") / "models"
    shutil.copytree(real_models.root, root)
    cfg = root.parent / "serving.yaml"
    cfg.write_text("models:\n  imdb:\n    threshold: 0.7\n")
    run = _report("all", "--repo", str(root), "--data-dir", str(data_dir), "--config", str(cfg), "--per-day", "2000")
    assert run.returncode == 0, run.stderr
    return root


def _page(root, name) -> tuple[str, dict]:
    d = root / name / "1" / "report"
    return (d / "index.html").read_text(), json.loads((d / "summary.json").read_text())


def test_imdb_report_counts_errors_at_the_serving_threshold(reported, real_models, data_dir):
    pairs = list(read_imdb_raw(data_dir, "test"))
    enc = TextEncoder.from_vocab_file(reported / "imdb" / "1" / "vocab.json", 10000)
    p = np.concatenate(
        [
            real_models.models["imdb"](multi_hot([enc.ids(t) for t, _ in pairs[i : i + 2000]], 10000))[:, 0]
            for i in range(0, len(pairs), 2000)
        ]
    )
    y = np.array([label for _, label in pairs])
    fp, fn = int(np.sum((p >= 0.7) & (y == 0))), int(np.sum((p < 0.7) & (y == 1)))
    html, summary = _page(reported, "imdb")
    assert summary["threshold"] == 0.7 and summary["test_rows"] == 25000
    # a row or two may sit on the threshold within float rounding between numpy and onnxruntime
    assert abs(summary["false_positives_per_1000"] - round(1000 * fp / 25000)) <= 1
    assert abs(summary["false_negatives_per_1000"] - round(1000 * fn / 25000)) <= 1
    assert abs(summary["accuracy"] - np.mean((p >= 0.7) == y)) < 1e-3
    assert (
        f"of every 1,000 reviews, {summary['false_positives_per_1000']} negative reviews would be flagged positive"
    ) in html
    assert f"{summary['false_negatives_per_1000']} positive reviews would be missed" in html
    assert abs(summary["false_positives"] - fp) <= 2 and abs(summary["false_negatives"] - fn) <= 2
    assert (
        f"If 2,000 reviews like these arrive every day, on average <b>{2000 * summary['false_positives'] / 25000:,.0f}"
        f" negative reviews would be flagged positive</b> and <b>{2000 * summary['false_negatives'] / 25000:,.0f} "
        "positive reviews would be missed</b>"
    ) in html
    assert "the serving config" in html and "0.7" in html
    # the most confident false positive is a real review, shown with its score
    worst = max((i for i in range(len(y)) if y[i] == 0), key=lambda i: p[i])
    words = pairs[worst][0].replace("<br />", " ").split()[:8]
    assert " ".join(words).replace("&", "&amp;").replace('"', "&quot;").replace("'", "&#x27;") in html
    assert f"probability positive {p[worst]:.3f}" in html
    for png in ("confusion.png", "threshold.png", "calibration.png", "variants.png"):
        assert f'src="{png}"' in html
        assert (reported / "imdb" / "1" / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reuters_report_has_per_topic_figures_and_decoded_newswires(reported, real_models, data_dir):
    ds = load_reuters(data_dir)
    pred = real_models.models["reuters"](multi_hot(ds.x_test, 10000)).argmax(1)
    html, summary = _page(reported, "reuters")
    assert abs(summary["accuracy"] - np.mean(pred == ds.y_test)) < 1e-3
    earn = 3  # the most frequent topic
    sel = pred == earn
    precision = np.mean(ds.y_test[sel] == earn)
    assert re.search(rf"<td>topic{earn}</td><td>{np.sum(ds.y_test == earn)}</td><td>{precision:.0%}</td>", html)
    assert 'src="per_topic.png"' in html and "Confident wrong topics" in html
    assert re.search(r"<blockquote>[a-z?]+ [a-z?]+ [a-z?]+", html)  # decoded words, not ids


def test_boston_report_has_price_bands_and_residuals(reported, real_models, data_dir):
    ds = load_boston(data_dir)
    pred = real_models.models["boston"](ds.x_test)[:, 0]
    html, summary = _page(reported, "boston")
    assert summary["mae"] == pytest.approx(float(np.mean(np.abs(pred - ds.y_test))), rel=1e-4)
    within = round(1000 * float(np.mean(np.abs(pred - ds.y_test) <= 2)))
    assert f"{within} would be priced within $2,000" in html
    assert 'src="price_bands.png"' in html and 'src="residuals.png"' in html and "houses" in html


def test_report_stays_inside_the_manifest_contract(reported):
    repo = ModelRepository(reported)
    for name in ("imdb", "reuters", "boston"):
        assert repo.verify(name, 1) == []
        assert "report/index.html" in repo.manifest(name, 1).files


def test_a_failed_report_leaves_the_version_untouched(real_models, data_dir, tmp_path, monkeypatch):
    from report import figures
    from report.cli import report

    root = tmp_path / "models"
    shutil.copytree(real_models.root, root)
    before = (root / "boston" / "1" / "manifest.json").read_bytes()

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(figures, "residuals", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        report("boston", repo=root, data_dir=data_dir, config=None, threshold=None, version=None, variant="onnx_fp32")
    assert (root / "boston" / "1" / "manifest.json").read_bytes() == before
    assert not (root / "boston" / "1" / "report").exists()
    assert sorted(p.name for p in (root / "boston").iterdir()) == [".lock", "1"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["mnist"], "unknown model 'mnist'"),
        (["imdb", "--threshold", "1.5"], "--threshold 1.5"),
        (["imdb", "--variant", "tflite_fp32"], "variant 'tflite_fp32' is not in the manifest"),
        (["imdb", "--version", "7"], "no version 7"),
    ],
)
def test_bad_requests_are_one_line(real_models, data_dir, args, message):
    run = _report(*args, "--repo", str(real_models.root), "--data-dir", str(data_dir))
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("error: ") and message in run.stderr and "Traceback" not in run.stderr


def test_report_never_imports_tensorflow(real_models, data_dir, tmp_path):
    root = tmp_path / "models"
    shutil.copytree(real_models.root, root)
    code = (
        f"import sys\nfrom report.cli import report\nreport('boston', repo={str(root)!r}, data_dir={str(data_dir)!r}, "
        "config=None, threshold=None, version=None, variant='onnx_fp32')\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\nprint('ok')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "ok" in run.stdout, run.stderr[-2000:]


def test_the_served_variant_comes_from_the_serving_config(real_models, data_dir, tmp_path):
    cfg = tmp_path / "serving.yaml"
    cfg.write_text("models:\n  boston:\n    variant: onnx_int8\n")
    run = _report("boston", "--repo", str(real_models.root), "--data-dir", str(data_dir), "--config", str(cfg))
    assert run.returncode == 2 and "variant 'onnx_int8' is not in the manifest (ONNX variants: onnx_fp32)" in run.stderr
