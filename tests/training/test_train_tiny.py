"""Training end to end on tiny generated data: a complete, valid repository version comes out."""

import json

import numpy as np
import pytest

from modelyard.repository import ModelRepository
from modelyard.tasks import Regression
from training import models
from training.inputs import TabularFeatures
from training.recipes import RECIPES, Recipe
from training.trainer import train
from tests.training.tiny_data import TINY_WORDS


def test_text_model_publishes_complete_version(tiny_text_dataset, repo_dir, tmp_path):
    repo = ModelRepository(repo_dir)
    m = train(RECIPES["imdb"], tiny_text_dataset, repo, tmp_path / "runs", epochs=3, num_words=TINY_WORDS, verbose=0)
    vdir = repo.path("imdb", 1)
    assert sorted(p.name for p in vdir.iterdir()) == [
        "manifest.json",
        "model.keras",
        "training_history.png",
        "training_report.json",
        "vocab.json",
    ]
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


def test_a_new_model_is_one_recipe(tiny_boston_dataset, repo_dir, tmp_path):
    """A model the trainer has never heard of, with its own features and a held-out share instead of K-fold:
    everything model-specific comes from the recipe."""
    names = [f"f{i}" for i in range(13)]
    recipe = Recipe(
        "houses",
        models.boston_model,
        TabularFeatures(names),
        Regression,
        max_epochs=3,
        batch_size=16,
        patience=2,
        labels=None,
        output_name="value",
        output_description="a value",
        val_fraction=0.25,
    )
    repo = ModelRepository(repo_dir)
    m = train(recipe, tiny_boston_dataset, repo, tmp_path / "runs", verbose=0)
    assert repo.verify("houses", 1) == []
    assert m.inputs[0].name == "features" and m.inputs[0].shape == [None, 13]
    assert m.outputs[0].name == "value" and m.outputs[0].shape == [None, 1]
    assert m.preprocessing.feature_names == names and set(m.preprocessing.feature_stats) == set(names)
    assert m.kfold is None and m.training["validation"] == "last 25% of the training split"
    assert m.variants["keras"].metric == "mae" and m.variants["keras"].value == m.metrics["mae"]
