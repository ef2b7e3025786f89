"""Fit one model, evaluate it on the real test split, and publish it as a new repository version."""

from __future__ import annotations

import functools
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from modelyard.datasets import Dataset
from modelyard.manifest import DatasetInfo, Manifest, TensorSpec, VariantRecord
from modelyard.repository import ModelRepository
from tfshared.tfkeras import keras, tf
from training.inputs import EVAL_BATCH
from training.plots import plot_history
from training.recipes import Recipe


def _holdout_callbacks(run_dir: Path, patience: int) -> list:
    return [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "checkpoints" / "best.keras"), monitor="val_loss", save_best_only=True
        ),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard" / "holdout")),
    ]


def select_epochs_holdout(
    recipe: Recipe, build, x: np.ndarray, y: np.ndarray, max_epochs: int, run_dir: Path, seed: int, verbose: int
) -> tuple[int, dict]:
    """Fit on the training split less its last ``val_fraction`` (as Keras' ``validation_split``), with
    EarlyStopping on that held-out part; return the best epoch and the per-epoch history."""
    cut = int(len(y) * (1 - recipe.val_fraction))
    model = build()
    history = model.fit(
        **recipe.inputs.fit_data(x[:cut], y[:cut], recipe.batch_size, shuffle=True, seed=seed),
        validation_data=recipe.inputs.validation_data(x[cut:], y[cut:]),
        epochs=max_epochs,
        verbose=verbose,
        callbacks=_holdout_callbacks(run_dir, recipe.patience),
    )
    return int(np.argmin(history.history["val_loss"])) + 1, history.history


def _final_fit_callbacks(run_dir: Path) -> list:
    return [
        keras.callbacks.ModelCheckpoint(str(run_dir / "checkpoints" / "final.keras")),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard" / "final")),
    ]


def select_epochs_kfold(recipe: Recipe, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> dict:
    """The book's K-fold validation (Boston's 404 rows): the per-epoch validation metric (MAE) averaged over folds;
    each fold's metric at the epoch where that average is best."""
    k = recipe.kfold
    fold = len(x) // k
    histories = []
    progress = keras.utils.Progbar(k * epochs, unit_name="fold-epoch")
    tick = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: progress.add(1))
    for i in range(k):
        val = slice(i * fold, (i + 1) * fold)
        x_tr = np.concatenate([x[: i * fold], x[(i + 1) * fold :]])
        y_tr = np.concatenate([y[: i * fold], y[(i + 1) * fold :]])
        model = recipe.build(recipe, x_tr)
        h = model.fit(
            **recipe.inputs.fit_data(x_tr, y_tr, recipe.batch_size, shuffle=True, seed=seed),
            validation_data=recipe.inputs.validation_data(x[val], y[val]),
            epochs=epochs,
            verbose=0,
            callbacks=[tick],
        )
        histories.append(h.history[f"val_{recipe.metric}"])
    curves = np.array(histories)
    best = int((np.argmax if recipe.task.higher_is_better else np.argmin)(curves.mean(axis=0)))
    per_fold = [float(c) for c in curves[:, best]]
    return {
        "k": k,
        "epochs": epochs,
        "best_epoch": best + 1,
        "fold_mae": per_fold,
        "mean_mae": float(np.mean(per_fold)),
        "mean_val_mae_curve": curves.mean(axis=0).tolist(),
    }


def baseline(recipe: Recipe, y_train: np.ndarray, y_test: np.ndarray) -> float:
    """The trivial predictor's test score: the majority class, or the training mean price."""
    if recipe.task.predicts_labels:
        majority = np.bincount(y_train.astype(np.int64)).argmax()
        return float(np.mean(y_test == majority))
    return float(np.mean(np.abs(y_test - y_train.mean())))


def _choose_epochs(
    recipe: Recipe,
    build,
    x: np.ndarray,
    y: np.ndarray,
    run_dir: Path,
    seed: int,
    verbose: int,
    max_epochs: int,
    kfold_epochs: int,
) -> tuple[int, dict | None, dict | None]:
    """The book's procedure: validation picks the number of epochs (K-fold for Boston's 404 rows, the recipe's
    held-out share with EarlyStopping for the text models); the published model is then fit on the whole
    training split for that many epochs. Returns that epoch count, the held-out history and the K-fold record."""
    if recipe.kfold:
        kfold = select_epochs_kfold(recipe, x, y, kfold_epochs, seed)
        print(
            f"K-fold (K={recipe.kfold}) validation {recipe.metric.upper()} per fold: "
            f"{', '.join(f'{m:.3f}' for m in kfold['fold_mae'])}; mean {kfold['mean_mae']:.3f} "
            f"at epoch {kfold['best_epoch']}"
        )
        return kfold["best_epoch"], None, kfold
    best_epoch, validation = select_epochs_holdout(recipe, build, x, y, max_epochs, run_dir, seed, verbose)
    print(f"{recipe.name}: best validation loss at epoch {best_epoch}; refitting on all {len(y)} training samples")
    return best_epoch, validation, None


def train(
    recipe: Recipe,
    ds: Dataset,
    repo: ModelRepository,
    runs_dir: Path,
    *,
    epochs: int | None = None,
    seed: int = 113,
    num_words: int = 10000,
    verbose: int = 1,
    extra_data: dict | None = None,
) -> Manifest:
    """Train, validate, test and publish a new version. ``extra_data``: what :mod:`training.extra` added to
    ``ds``'s training split (recorded in the manifest)."""
    keras.utils.set_random_seed(seed)
    max_epochs = epochs or recipe.max_epochs
    started = time.time()
    run_dir = Path(runs_dir) / recipe.name / datetime.now().strftime("%Y%m%d-%H%M%S")

    x_train, x_test = recipe.inputs.encode(ds.x_train, num_words), recipe.inputs.encode(ds.x_test, num_words)
    build = functools.partial(recipe.build, recipe, x_train)
    best_epoch, validation, kfold = _choose_epochs(
        recipe, build, x_train, ds.y_train, run_dir, seed, verbose, max_epochs, epochs or recipe.kfold_epochs
    )
    keras.utils.set_random_seed(seed)
    model = build()
    fit = model.fit(
        **recipe.inputs.fit_data(x_train, ds.y_train, recipe.batch_size, shuffle=True, seed=seed),
        epochs=best_epoch,
        verbose=verbose,
        callbacks=_final_fit_callbacks(run_dir),
    )
    test = recipe.inputs.fit_data(x_test, ds.y_test, EVAL_BATCH)
    metrics = {k: float(v) for k, v in model.evaluate(**test, verbose=0, return_dict=True).items()}
    trivial = baseline(recipe, ds.y_train, ds.y_test)
    print(f"{recipe.name}: test {recipe.metric} {metrics[recipe.metric]:.4f} (trivial baseline {trivial:.4f})")
    curves = validation or fit.history

    with repo.new_version(recipe.name) as stage:
        model_path = stage.dir / "model.keras"
        model.save(model_path)
        preprocessing = recipe.inputs.preprocessing(ds, stage.dir, num_words)
        plot_history(
            curves,
            recipe.metric,
            stage.dir / "training_history.png",
            title=f"{recipe.name} v{stage.version}",
            kfold=kfold,
        )
        report = {
            "model": recipe.name,
            "version": stage.version,
            "test_metrics": metrics,
            "trivial_baseline": {recipe.metric: trivial},
            "epochs": best_epoch,
            "max_epochs": max_epochs,
            "validation_history": _floats(validation),
            "final_fit_history": _floats(fit.history),
            "kfold": kfold,
            "seconds": round(time.time() - started, 1),
            "run_dir": str(run_dir),
            "seed": seed,
            "tensorflow": tf.__version__,
            "python": platform.python_version(),
        }
        (stage.dir / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
        stage.manifest = Manifest(
            name=recipe.name,
            version=stage.version,
            task=recipe.task.name,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            inputs=[recipe.inputs.spec(num_words)],
            outputs=[
                TensorSpec(
                    name=recipe.output_name,
                    dtype="float32",
                    shape=list(model.output_shape),
                    description=recipe.output_description,
                )
            ],
            labels=recipe.labels,
            preprocessing=preprocessing,
            metrics=metrics,
            kfold={k: v for k, v in kfold.items() if k != "mean_val_mae_curve"} if kfold else None,
            dataset=DatasetInfo(
                name=ds.name, source=ds.source, files=ds.files, train_size=len(ds.y_train), test_size=len(ds.y_test)
            ),
            training={
                "epochs": best_epoch,
                "batch_size": recipe.batch_size,
                "optimizer": "rmsprop",
                "seed": seed,
                "validation": "kfold" if kfold else f"last {recipe.val_fraction:.0%} of the training split",
                **({"extra_data": extra_data} if extra_data else {}),
            },
            variants={
                "keras": VariantRecord(
                    format="keras",
                    path="model.keras",
                    metric=recipe.metric,
                    value=metrics[recipe.metric],
                    size_bytes=model_path.stat().st_size,
                )
            },
        )
    print(f"published {repo.path(recipe.name, stage.version)}")
    return stage.manifest


def _floats(history: dict | None) -> dict | None:
    return {k: [float(v) for v in vs] for k, vs in history.items()} if history else None
