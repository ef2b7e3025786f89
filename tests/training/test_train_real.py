"""Short runs on the genuine datasets: each model must beat the trivial predictor by a wide margin."""

import subprocess
import sys

import pytest

from modelyard.repository import ModelRepository
from tfshared.data import load_dataset
from training.recipes import RECIPES
from training.trainer import baseline, train

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize("name, epochs, margin", [("imdb", 2, 0.30), ("reuters", 5, 0.30)])
def test_text_models_beat_majority_class(data_dir, repo_dir, tmp_path, name, epochs, margin):
    ds = load_dataset(name, data_dir)
    m = train(RECIPES[name], ds, ModelRepository(repo_dir), tmp_path / "runs", epochs=epochs, verbose=0)
    assert m.metrics["accuracy"] > baseline(RECIPES[name], ds.y_train, ds.y_test) + margin
    assert m.dataset.test_size == len(ds.y_test) and m.dataset.files


def test_boston_beats_mean_price(data_dir, repo_dir, tmp_path):
    ds = load_dataset("boston", data_dir)
    m = train(RECIPES["boston"], ds, ModelRepository(repo_dir), tmp_path / "runs", epochs=40, verbose=0)
    trivial = baseline(RECIPES["boston"], ds.y_train, ds.y_test)
    assert m.metrics["mae"] < 0.6 * trivial
    assert m.kfold["mean_mae"] < 0.6 * trivial


def test_cli_trains_into_repo(data_dir, repo_dir, tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard",
            "train",
            "boston",
            "--data-dir",
            str(data_dir),
            "--repo",
            str(repo_dir),
            "--epochs",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "K-fold (K=4) validation MAE per fold" in run.stdout
    assert ModelRepository(repo_dir).versions("boston") == [1]


def test_cli_missing_dataset_is_one_clear_line(repo_dir, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "modelyard", "train", "reuters", "--data-dir", str(tmp_path), "--repo", str(repo_dir)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert run.stderr.strip().startswith("error: missing dataset file") and "reuters.npz" in run.stderr
    assert "Traceback" not in run.stderr
    assert not repo_dir.exists() or ModelRepository(repo_dir).versions("reuters") == []
