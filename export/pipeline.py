"""One model version -> every requested artifact, each validated, written atomically into the version."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console

from export import convert, finetune
from export.data import ExportData, prepare
from export.runtimes import KerasRunner, SavedModelRunner, TFLiteRunner
from export.validate import validate
from export.variants import VARIANTS, ExportError
from modelyard.datasets import Dataset
from modelyard.manifest import Manifest, VariantRecord
from modelyard.repository import ModelRepository
from tfshared.tfkeras import keras


@dataclass
class ExportOptions:
    sparsity: float = 0.8
    quantize: list[str] = field(default_factory=lambda: ["dynamic", "float16", "int8", "qat"])
    formats: list[str] = field(default_factory=lambda: ["savedmodel", "tflite", "onnx"])
    edge: bool = False
    edge_variant: str | None = None
    verbose: int = 1
    """0: no progress bars for the fine-tunes."""
    prune_fine_tune: finetune.FineTune | None = None
    qat_fine_tune: finetune.FineTune | None = None
    latency_runs: tuple[int, int] = (50, 20)
    latency_min_seconds: float = 0.25


@dataclass
class ExportResult:
    name: str
    version: int
    version_dir: Path
    manifest: Manifest
    produced: list[str]


def _load_keras(path: Path) -> keras.Model:
    return keras.models.load_model(path, compile=False)


class _Exporter:
    def __init__(self, stage_dir: Path, tmp: Path, data: ExportData, opts: ExportOptions, console: Console):
        self.dir, self.tmp, self.data, self.opts, self.console = stage_dir, tmp, data, opts, console
        self.progress = console if opts.verbose else None
        self.records: dict[str, VariantRecord] = {}
        self.reference: np.ndarray | None = None
        self.reference_value: float | None = None
        self.t0 = time.time()
        self.float_prefix = False

    def say(self, msg: str) -> None:
        self.console.print(f"[dim]{time.time() - self.t0:6.1f}s[/dim] [bold]{self.data.name}[/bold] {msg}")

    def _fresh(self, rel: str) -> Path:
        path = self.dir / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def check(
        self, name: str, runner, *, sparsity: float, details: dict | None = None, rel: str | None = None
    ) -> VariantRecord:
        spec = VARIANTS[name]
        rec, outputs = validate(
            name,
            spec.format,
            rel or spec.path,
            self.dir,
            runner,
            self.data,
            self.reference,
            self.reference_value,
            sparsity=sparsity,
            details=details,
            runs_b1=self.opts.latency_runs[0],
            runs_b64=self.opts.latency_runs[1],
            min_seconds=self.opts.latency_min_seconds,
        )
        if self.reference is None:
            self.reference, self.reference_value = outputs, rec.value
        verdict = "[green]accepted[/green]" if rec.status == "accepted" else f"[red]rejected[/red]: {rec.reason}"
        self.say(
            f"{name}: {rec.metric} {rec.value:.4f} ({rec.delta:+.4f}), max|diff| {rec.max_abs_diff:.2e}, "
            f"{rec.size_bytes / 1024:.1f} KiB, b64 {rec.latency_ms_b64:.3f} ms - {verdict}"
        )
        return rec

    def write_tflite(
        self, name: str, savedmodel: Path, mode: str, sparsity: float, details: dict, rel: str | None = None
    ) -> Path:
        self.say(f"converting {name}")
        t = time.time()
        float_ops = convert.NORMALIZATION_OPS if (self.float_prefix and mode in ("int8", "qat_int8")) else None
        blob = convert.tflite(savedmodel, mode, self.data.representative(), float_ops)
        if float_ops:
            details = {**details, "float_ops": float_ops}
        path = self._fresh(rel or VARIANTS[name].path)
        path.write_bytes(blob)
        self.records[name] = self.check(
            name,
            TFLiteRunner(path),
            sparsity=sparsity,
            rel=rel,
            details={"mode": mode, "convert_s": round(time.time() - t, 2), **details},
        )
        return path


def run_export(
    repo: ModelRepository,
    name: str,
    version: int | None,
    ds: Dataset,
    opts: ExportOptions,
    console: Console | None = None,
) -> ExportResult:
    console = console or Console()
    version = repo.resolve(name, version)
    q, formats = set(opts.quantize), set(opts.formats)
    with (
        tempfile.TemporaryDirectory(prefix=f"modelyard-export-{name}-") as tmp_s,
        repo.update_version(name, version) as stage,
    ):
        tmp = Path(tmp_s)
        manifest: Manifest = stage.manifest
        data = prepare(ds, manifest)
        ex = _Exporter(stage.dir, tmp, data, opts, console)
        keras_spec = manifest.variants.get("keras")
        keras_path = stage.dir / (keras_spec.path if keras_spec else "model.keras")
        if not keras_path.is_file():
            raise ExportError(f"{name} v{version} has no Keras model at {keras_path.name}; retrain it")
        model = _load_keras(keras_path)
        layer_sp, base_sp = finetune.kernel_sparsity(model)
        ex.float_prefix = any(isinstance(l, keras.layers.Normalization) for l in model.layers)
        ex.say(f"v{version}: validating the Keras model on {len(data.y_test)} test rows")
        ex.records["keras"] = ex.check(
            "keras", KerasRunner(model), sparsity=base_sp, details={"layer_sparsity": layer_sp}, rel=keras_path.name
        )

        # SavedModel: an artifact of its own and the source of every TFLite file.
        sm = ex._fresh(VARIANTS["savedmodel"].path) if "savedmodel" in formats else tmp / "savedmodel"
        ex.say("writing SavedModel")
        convert.save_savedmodel(model, sm, data.input_name, data.output_name)
        if "savedmodel" in formats:
            ex.records["savedmodel"] = ex.check(
                "savedmodel", SavedModelRunner(sm), sparsity=base_sp, details={"signature": convert.SIGNATURE}
            )

        base = {"source": "keras", "layer_sparsity": layer_sp}
        int8_tflite = None
        if "tflite" in formats or ("onnx" in formats and "int8" in q):
            modes = [("tflite_fp32", "fp32")] if "tflite" in formats else []
            if "tflite" in formats:
                modes += [(f"tflite_{m}", m) for m in ("dynamic", "float16") if m in q]
            if "int8" in q:
                modes += [("tflite_int8", "int8")] + ([("tflite_int8_io", "int8_io")] if "tflite" in formats else [])
            for vname, mode in modes:
                # without --formats tflite, the int8 file is only ONNX's input: beside, never over, a published one
                rel = None if "tflite" in formats else ".int8-for-onnx.tflite"
                path = ex.write_tflite(vname, sm, mode, base_sp, base, rel)
                if vname == "tflite_int8":
                    int8_tflite = path

        if "tflite" in formats and "int8" in q and opts.sparsity > 0:
            ex.say(f"pruning to {opts.sparsity:.0%} sparsity (tfmot prune_low_magnitude, fine-tune on train split)")
            t = time.time()
            pr = finetune.prune(
                _load_keras(keras_path), data, opts.sparsity, progress=ex.progress, override=opts.prune_fine_tune
            )
            ex.say(
                "layer sparsity after strip_pruning: " + ", ".join(f"{k} {v:.1%}" for k, v in pr.layer_sparsity.items())
            )
            psm = tmp / "pruned_savedmodel"
            convert.save_savedmodel(pr.model, psm, data.input_name, data.output_name)
            ex.write_tflite(
                "tflite_pruned_int8",
                psm,
                "int8",
                pr.sparsity,
                {
                    "source": "pruned",
                    "target_sparsity": opts.sparsity,
                    "layer_sparsity": pr.layer_sparsity,
                    "schedule": pr.schedule,
                    "fine_tune": pr.fine_tune,
                    "fine_tune_s": round(time.time() - t, 1),
                },
            )

        if "tflite" in formats and "qat" in q:
            ex.say("quantization-aware training (tfmot quantize_apply, short fine-tune)")
            t = time.time()
            qm, info = finetune.quantization_aware(
                _load_keras(keras_path), data, progress=ex.progress, override=opts.qat_fine_tune
            )
            qsm = tmp / "qat_savedmodel"
            convert.save_savedmodel(qm, qsm, data.input_name, data.output_name)
            ex.write_tflite(
                "tflite_qat_int8",
                qsm,
                "qat_int8",
                base_sp,
                {"source": "qat", "fine_tune": info, "fine_tune_s": round(time.time() - t, 1)},
            )

        if "onnx" in formats:
            from export.onnx_int8 import export_onnx

            export_onnx(ex, model, int8_tflite if "int8" in q else None, base_sp)

        if "tflite" not in formats and int8_tflite is not None:  # only a stepping stone to ONNX
            ex.records.pop("tflite_int8", None)
            int8_tflite.unlink()

        manifest.variants.update(ex.records)
        if opts.edge:
            from export.edge import build_bundle

            chosen = build_bundle(stage.dir, manifest, opts.edge_variant)
            ex.say(f"edge bundle written to edge/ with {chosen}")
        from export.report import write_report

        write_report(stage.dir, manifest)
        stage.manifest = manifest
    ex.say(f"published {repo.path(name, version)} (every file re-hashed into manifest.files)")
    return ExportResult(name, version, repo.path(name, version), repo.manifest(name, version), list(ex.records))
