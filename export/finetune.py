"""Pruning (tfmot ``prune_low_magnitude``) and quantization-aware training (tfmot ``quantize_apply``),
each a short fine-tune on the training split, starting from a fresh copy of the trained model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from export.data import ExportData
from tfshared.tfkeras import keras

MIN_PRUNE_WEIGHTS = 1024
"""Dense kernels smaller than this are left dense: pruning them saves nothing. The output layer is never
pruned either: on Reuters, pruning its 64 x 46 kernel costs ~4 accuracy points for 2% of the weights."""


@dataclass(frozen=True)
class FineTune:
    epochs: int
    batch_size: int
    learning_rate: float


# Short fine-tunes, sized so that the model recovers without over-fitting (IMDB over-fits after ~4 epochs).
PRUNE_PLAN = {"imdb": FineTune(4, 512, 5e-4), "reuters": FineTune(10, 128, 5e-4), "boston": FineTune(60, 32, 5e-4)}
QAT_PLAN = {"imdb": FineTune(1, 512, 1e-4), "reuters": FineTune(2, 512, 1e-4), "boston": FineTune(20, 32, 1e-4)}
DEFAULT_TEXT, DEFAULT_TABULAR = FineTune(2, 64, 5e-4), FineTune(20, 16, 5e-4)


def plan(table: dict, data: ExportData, override: FineTune | None = None) -> FineTune:
    return override or table.get(data.name) or (DEFAULT_TEXT if data.is_text else DEFAULT_TABULAR)


def _fit_inputs(data: ExportData, batch_size: int, seed: int):
    if data.is_text:
        from tfshared.batches import MultiHotBatches

        return dict(x=MultiHotBatches(data.x_train, data.y_train, batch_size, shuffle=True, seed=seed))
    return dict(x=data.x_train, y=data.y_train, batch_size=batch_size, shuffle=True)


def steps_per_epoch(data: ExportData, batch_size: int) -> int:
    return math.ceil(len(data.y_train) / batch_size)


def pruning_schedule(target: float, total_steps: int) -> dict:
    """PolynomialDecay parameters that fit the real number of steps: pruning ends at 3/4 of the
    fine-tune (the rest recovers accuracy), in ~10 increments, and ``end_step`` is a pruning step."""
    end = max(1, int(total_steps * 0.75))
    frequency = max(1, end // 10)
    end = frequency * max(1, end // frequency)
    return dict(initial_sparsity=0.0, final_sparsity=float(target), begin_step=0, end_step=end, frequency=frequency)


@dataclass
class PruneResult:
    model: keras.Model
    layer_sparsity: dict[str, float] = field(default_factory=dict)
    sparsity: float = 0.0
    schedule: dict = field(default_factory=dict)
    fine_tune: dict = field(default_factory=dict)


def kernel_sparsity(model: keras.Model) -> tuple[dict[str, float], float]:
    """Share of exact zeros in every Dense kernel, and over all Dense kernels together."""
    per, zeros, total = {}, 0, 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            k = layer.kernel.numpy()
            per[layer.name] = round(float(np.mean(k == 0)), 6)
            zeros += int(np.sum(k == 0))
            total += k.size
    return per, (zeros / total if total else 0.0)


class EpochBar(keras.callbacks.Callback):
    """One rich progress bar per fine-tune (epochs done, last loss), in place of Keras' two lines per epoch."""

    def __init__(self, console, description: str, epochs: int):
        super().__init__()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epochs  {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._task = self._progress.add_task(description, total=epochs, loss="")

    def on_train_begin(self, logs=None):
        self._progress.start()

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        self._progress.update(self._task, advance=1, loss="" if loss is None else f"loss {loss:.4f}")

    def on_train_end(self, logs=None):
        self._progress.stop()


def _fit(
    model: keras.Model,
    data: ExportData,
    ft: FineTune,
    seed: int,
    progress,
    description: str,
    callbacks: list | None = None,
) -> None:
    callbacks = [*(callbacks or []), *([EpochBar(progress, description, ft.epochs)] if progress is not None else [])]
    model.fit(**_fit_inputs(data, ft.batch_size, seed), epochs=ft.epochs, verbose=0, callbacks=callbacks)


def prune(
    model: keras.Model,
    data: ExportData,
    target: float,
    *,
    seed: int = 113,
    progress=None,
    override: FineTune | None = None,
) -> PruneResult:
    """``progress``: a rich Console to show the fine-tune's progress bar on; None: silent."""
    import tensorflow_model_optimization as tfmot

    keras.utils.set_random_seed(seed)
    ft = plan(PRUNE_PLAN, data, override)
    total = ft.epochs * steps_per_epoch(data, ft.batch_size)
    sched = pruning_schedule(target, total)
    schedule = tfmot.sparsity.keras.PolynomialDecay(**sched)

    outputs = set(model.output_names)

    def wrap(layer):
        if (
            isinstance(layer, keras.layers.Dense)
            and layer.name not in outputs
            and int(np.prod(layer.kernel.shape)) >= MIN_PRUNE_WEIGHTS
        ):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    pruned = keras.models.clone_model(model, clone_function=wrap)
    pruned.compile(optimizer=keras.optimizers.RMSprop(ft.learning_rate), loss=data.task.loss)
    _fit(pruned, data, ft, seed, progress, "pruning fine-tune", [tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    per, overall = kernel_sparsity(stripped)
    return PruneResult(
        stripped,
        per,
        overall,
        {**sched, "total_steps": total},
        {
            "epochs": ft.epochs,
            "batch_size": ft.batch_size,
            "learning_rate": ft.learning_rate,
            "pruned_layers": [l.name for l in pruned.layers if type(l).__name__ == "PruneLowMagnitude"],
        },
    )


def quantization_aware(
    model: keras.Model, data: ExportData, *, seed: int = 113, progress=None, override: FineTune | None = None
) -> tuple[keras.Model, dict]:
    """tfmot QAT on every Dense layer (the Normalization layer stays float), then a short fine-tune."""
    import tensorflow_model_optimization as tfmot

    q = tfmot.quantization.keras
    keras.utils.set_random_seed(seed)
    ft = plan(QAT_PLAN, data, override)
    annotated = keras.models.clone_model(
        model, clone_function=lambda l: q.quantize_annotate_layer(l) if isinstance(l, keras.layers.Dense) else l
    )
    qat = q.quantize_apply(annotated)
    for layer in qat.layers:  # quantize_apply clones the model: re-derive Normalization's mean/std from its
        if isinstance(layer, keras.layers.Normalization):  # restored weights, or it normalizes nothing
            layer.finalize_state()
    calibrate_activation_ranges(qat, model, data.representative(1024, seed))
    qat.compile(optimizer=keras.optimizers.RMSprop(ft.learning_rate), loss=data.task.loss)
    _fit(qat, data, ft, seed, progress, "QAT fine-tune")
    return qat, {"epochs": ft.epochs, "batch_size": ft.batch_size, "learning_rate": ft.learning_rate}


def calibrate_activation_ranges(qat: keras.Model, float_model: keras.Model, x: np.ndarray) -> dict:
    """Start every QAT activation range at the float model's observed range on training rows. tfmot starts
    them at [-6, 6] and moves them by a slow moving average, so a short fine-tune leaves an output such as
    Boston's price (up to 50) clipped at 6."""
    wrapped = {l.name: l for l in qat.layers if any("post_activation_min" in w.name for w in l.weights)}
    names = [l.name for l in float_model.layers if f"quant_{l.name}" in wrapped]
    if not names:
        return {}
    probe = keras.Model(float_model.inputs, [float_model.get_layer(n).output for n in names])
    outs = probe(x, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    ranges = {}
    for n, out in zip(names, outs):
        out = np.asarray(out)
        lo, hi = min(float(out.min()), 0.0), max(float(out.max()), 0.0)
        for w in wrapped[f"quant_{n}"].weights:
            if "post_activation_min" in w.name:
                w.assign(lo)
            elif "post_activation_max" in w.name:
                w.assign(hi)
        ranges[n] = (lo, hi)
    return ranges
