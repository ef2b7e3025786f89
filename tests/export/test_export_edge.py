"""The edge bundle runs in a process where TensorFlow cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _no_tf_env(tmp: Path) -> dict:
    blocker = tmp / "block"
    for mod in ("tensorflow", "tf_keras", "keras"):
        (blocker / mod).mkdir(parents=True, exist_ok=True)
        (blocker / mod / "__init__.py").write_text(f"raise ImportError('{mod} is not available here')\n")
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(blocker)}


def _predict(bundle: Path, args, env):
    return subprocess.run(
        [sys.executable, str(bundle / "predict.py"), *args],
        cwd=bundle.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_text_bundle_without_tensorflow(exported, tmp_path):
    repo, _ = exported
    bundle = repo.path("imdb", 1) / "edge"
    assert {p.name for p in bundle.iterdir()} >= {"model.tflite", "predict.py", "bundle.json", "vocab.json"}
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["variant"].startswith("tflite_") and meta["labels"] == ["negative", "positive"]
    env = _no_tf_env(tmp_path)
    check = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "not available" in check.stderr
    pos = _predict(bundle, ["this movie was wonderful, brilliant and moving"], env)
    assert pos.returncode == 0, pos.stderr
    label, prob = pos.stdout.split()[:2]
    assert label == "positive" and 0.5 <= float(prob) <= 1.0
    neg = _predict(bundle, ["an awful, boring, terrible mess"], env)
    assert neg.returncode == 0 and neg.stdout.split()[0] == "negative", neg.stderr


def test_tabular_bundle_takes_numbers_or_named_pairs(exported, tmp_path):
    repo, _ = exported
    bundle = repo.path("boston", 1) / "edge"
    env = _no_tf_env(tmp_path)
    values = ["3", "10", "11", "0", "0.55", "6.3", "70", "3.8", "9", "400", "18", "350", "12"]
    names = json.loads((bundle / "bundle.json").read_text())["preprocessing"]["feature_names"]
    a = _predict(bundle, values, env)
    b = _predict(bundle, [f"{n}={v}" for n, v in zip(names, values)], env)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("price: ")
    bad = _predict(bundle, ["1", "2"], env)
    assert bad.returncode != 0 and "expected 13" in bad.stderr
