"""``modelyard export`` (also ``python -m export``): options are checked before TensorFlow is imported,
so a mistake gets its one-line error at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from export.variants import FORMATS, MODELS, QUANTIZATIONS, ExportError, parse_list
from modelyard.settings import load_settings


def export(
    model: Annotated[str, typer.Argument(help="imdb, reuters, boston or all")],
    repo: Annotated[
        Optional[Path], typer.Option(help="model repository (env MODELYARD_REPO; default ./models)")
    ] = None,
    version: Annotated[Optional[int], typer.Option(help="version to export (default: the latest)")] = None,
    prune: Annotated[float, typer.Option(help="target sparsity of the pruned variant, 0-0.99 (0: no pruning)")] = 0.8,
    quantize: Annotated[str, typer.Option(help="comma-separated: dynamic,float16,int8,qat")] = ",".join(QUANTIZATIONS),
    formats: Annotated[str, typer.Option(help="comma-separated: savedmodel,tflite,onnx")] = ",".join(FORMATS),
    data_dir: Annotated[
        Optional[Path],
        typer.Option(
            help="folder with the Keras dataset files (env MODELYARD_DATA_DIR); unset: download with keras.datasets"
        ),
    ] = None,
    edge: Annotated[
        bool, typer.Option("--edge", help="also write edge/: a .tflite bundle with a TF-free predict.py")
    ] = False,
    edge_variant: Annotated[
        Optional[str], typer.Option(help="TFLite variant for --edge (default: the smallest accepted one)")
    ] = None,
    browser: Annotated[
        bool,
        typer.Option(
            "--browser",
            help="only write browser/: a static page that runs the "
            "version's smallest accepted ONNX variant with onnxruntime-web, offline; "
            "nothing is re-exported",
        ),
    ] = False,
    browser_variant: Annotated[
        Optional[str], typer.Option(help="ONNX variant for --browser (default: the smallest accepted one)")
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option(
            help="serving config whose IMDB threshold the --browser page "
            "uses, as the server does (env MODELYARD_CONFIG)"
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars for the fine-tunes")] = False,
) -> None:
    """Prune, quantize and convert a trained version to SavedModel, TFLite and ONNX; validate every artifact
    on the full real test set and record it in the version's manifest."""
    name = model.strip().lower()
    if name not in (*MODELS, "all"):
        raise ExportError(f"unknown model {model!r}; choose from {', '.join(MODELS)}, all")
    if not (0.0 <= prune <= 0.99):
        raise ExportError(f"--prune {prune} is outside 0-0.99 (it is the target share of zero weights)")
    quant = parse_list(quantize, QUANTIZATIONS, "quantization")
    fmts = parse_list(formats, FORMATS, "format")
    if version is not None and version < 1:
        raise ExportError(f"--version {version}: versions start at 1")
    settings = load_settings(data_dir=data_dir, repo=repo, config=config)
    from modelyard.repository import ModelRepository

    repository = ModelRepository(settings.repo)
    names = list(MODELS) if name == "all" else [name]
    if name == "all":
        names = [n for n in names if repository.versions(n)]
        if not names:
            raise ExportError(f"no trained models in {settings.repo}; run: modelyard train all")
    if version is not None and name == "all":
        raise ExportError("--version needs one model, not 'all'")
    for n in names:
        repository.resolve(n, version)  # unknown model or missing version: one line, before TF loads
    if browser:
        if edge:
            raise ExportError("--browser builds only the browser bundle of an exported version; run --edge on its own")
        return _browser_bundles(repository, names, version, browser_variant, settings.config)

    from rich.console import Console

    from export.pipeline import ExportOptions, run_export
    from export.report import rejections, summary_table
    from tfshared.data import load_dataset

    import sys

    console = Console(width=None if sys.stdout.isatty() else 160)
    opts = ExportOptions(
        sparsity=prune, quantize=quant, formats=fmts, edge=edge, edge_variant=edge_variant, verbose=0 if quiet else 1
    )
    manifests = []
    for n in names:
        console.rule(f"export {n}")
        ds = load_dataset(n, settings.data_dir)
        manifests.append(run_export(repository, n, version, ds, opts, console).manifest)
    console.print(summary_table(manifests))
    for line in rejections(manifests):
        console.print(f"[red]rejected[/red] {line} (not servable by default)")
    console.print(
        "sizes: 'vs tflite_fp32' = file size as % of tflite_fp32 / how many times smaller gzipped; "
        "latency: median ms per call in-process"
    )


def _browser_bundles(
    repository, names: list[str], version: int | None, variant: str | None, config: Path | None
) -> None:
    from export.browser_bundle import build_browser_bundle, serving_threshold

    thresholds = {n: serving_threshold(config, n) for n in names}  # a bad config fails before anything is written
    for n in names:
        b = build_browser_bundle(repository, n, version, variant, thresholds[n])
        size, gz = b.total
        print(
            f"{n} v{b.version}: {b.dir} runs {b.variant}; {size / 1e6:.2f} MB, {gz / 1e6:.2f} MB gzipped "
            f"(open {b.dir / 'index.html'}, or serve the folder from any static host)"
        )
