"""Training end to end on tiny generated data: a complete, valid repository version comes out."""

import json

import numpy as np
import pytest

from modelyard.repository import ModelRepository
from training.recipes import RECIPES
from training.trainer import train
from tests.training.conftest import TINY_WORDS


def test_text_model_publishes_complete_version(tiny_text_dataset, repo_dir, tmp_path):
    repo = ModelRepository(repo_dir)
    m = train(RECIPES["imdb"], tiny_text_dataset, repo, tmp_path / "runs", epochs=3, num_words=TINY_WORDS, verbose=0)
    vdir = repo.path("imdb", 1)
    assert sorted(p.name for p in vdir.iterdir()) == [
        "manifest.json", "model.keras", "training_history.png", "training_report.json", "vocab.json"]
    assert repo.verify("imdb", 1) == []
    assert m.inputs[0].shape == [None, TINY_WORDS] and m.outputs[0].shape == [None, 1]
    assert m.labels == ["negative", "positive"] and m.preprocessing.num_words == TINY_WORDS
    assert m.variants["keras"].value == m.metrics["accuracy"]
    report = json.loads((vdir / "training_report.json").read_text())
    assert report["epochs"] <= 3 and "val_loss" in report["validation_history"]
    assert (tmp_path / "runs" / "imdb").is_dir()  # TensorBoard logs and checkpoints


def test_boston_runs_kfold_and_keeps_normalization_in_model(tiny_boston_dataset, repo_dir, tmp_path):
    from tfshared.tfkeras import keras

    repo = ModelRepository(repo_dir)
    m = train(RECIPES["boston"], tiny_boston_dataset, repo, tmp_path / "runs", epochs=3, verbose=0)
    assert m.kfold["k"] == 4 and len(m.kfold["fold_mae"]) == 4
    assert m.kfold["mean_mae"] == pytest.approx(np.mean(m.kfold["fold_mae"]))
    assert m.preprocessing.feature_names[0] == "CRIM" and "LSTAT" in m.preprocessing.feature_stats
    model = keras.models.load_model(repo.path("boston", 1) / "model.keras")
    assert model.layers[1].name == "normalize"
    raw = tiny_boston_dataset.x_test[:4]
    assert model.predict(raw, verbose=0).shape == (4, 1)


def test_second_run_is_a_new_version(tiny_boston_dataset, repo_dir, tmp_path):
    repo = ModelRepository(repo_dir)
    for _ in range(2):
        train(RECIPES["boston"], tiny_boston_dataset, repo, tmp_path / "runs", epochs=1, verbose=0)
    assert repo.versions("boston") == [1, 2]
