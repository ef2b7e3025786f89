"""``modelyard train``: TensorFlow is imported only when the command runs (reading the recipes does not load it)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from modelyard.settings import load_settings
from training.recipes import RECIPES

TrainTarget = Enum("TrainTarget", {name: name for name in [*RECIPES, "all"]}, type=str)


def train(
    model: Annotated[TrainTarget, typer.Argument(help="which model to train")],
    data_dir: Annotated[
        Optional[Path],
        typer.Option(
            help="folder with the Keras dataset files (env MODELYARD_DATA_DIR); unset: download with keras.datasets"
        ),
    ] = None,
    repo: Annotated[
        Optional[Path], typer.Option(help="model repository (env MODELYARD_REPO; default ./models)")
    ] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="maximum epochs (default: per-model recipe)")] = None,
    extra_data: Annotated[
        Optional[Path],
        typer.Option(
            help="audited production rows (`modelyard audit sample`'s CSV, filled in) added to the training split only"
        ),
    ] = None,
) -> None:
    """Train on the real data and publish a new numbered version to the model repository."""
    settings = load_settings(data_dir=data_dir, repo=repo)
    from modelyard.repository import ModelRepository
    from modelyard.errors import ModelyardError
    from tfshared.data import NUM_WORDS, load_dataset
    from training.recipes import FEATURE_NAMES

    names = list(RECIPES) if model.value == "all" else [model.value]
    # Every dataset file is found and hash-checked before TensorFlow starts: a bad file fails in a second.
    datasets = [load_dataset(name, settings.data_dir) for name in names]
    extra = None
    if extra_data is not None:
        if len(names) != 1:
            raise ModelyardError("--extra-data: name one model (its rows are that model's)")
        from training.extra import read_extra, with_extra

        recipe = RECIPES[names[0]]
        extra = read_extra(extra_data, names[0], recipe.labels, datasets[0].vocab_file, NUM_WORDS, FEATURE_NAMES)
        datasets = [with_extra(datasets[0], extra)]
        print(f"{names[0]}: {extra.record['rows']} audited rows from {extra_data} added to the training split")
    from training.trainer import train as train_one

    repository = ModelRepository(settings.repo)
    for name, ds in zip(names, datasets):
        train_one(
            RECIPES[name],
            ds,
            repository,
            settings.runs_dir,
            epochs=epochs,
            seed=settings.seed,
            extra_data=extra.record if extra else None,
        )
