"""``modelyard report``: options and the threshold are settled before any data is read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from modelyard.errors import ModelyardError
from modelyard.settings import load_settings

MODELS = ("imdb", "reuters", "boston")
DEFAULT_VARIANT = "onnx_fp32"


def serving_threshold(config: Path | None, name: str, threshold: float | None) -> tuple[float, str]:
    """The decision threshold and where it came from: ``--threshold``, else the serving config (the one the
    server reads), else the server's default."""
    from serving.registry import ServeConfig
    from serving.tasks import DEFAULT_THRESHOLD

    if threshold is not None:
        if not 0 < threshold < 1:
            raise ModelyardError(f"--threshold {threshold}: a probability strictly between 0 and 1")
        return threshold, "--threshold"
    if config is not None:
        model = ServeConfig.read(config).models.get(name)
        if model is not None and "threshold" in model.model_fields_set:
            return model.threshold, f"the serving config {config}"
    return DEFAULT_THRESHOLD, "the server's default (no threshold in the serving config)"


def report(
    model: Annotated[str, typer.Argument(help="imdb, reuters, boston or all")],
    version: Annotated[Optional[int], typer.Option(help="version to report on (default: the latest)")] = None,
    repo: Annotated[Optional[Path], typer.Option(help="model repository (env MODELYARD_REPO; default ./models)")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="folder with the Keras dataset files "
                                                     "(env MODELYARD_DATA_DIR)")] = None,
    config: Annotated[Optional[Path], typer.Option(help="serving config whose IMDB threshold to use "
                                                   "(env MODELYARD_CONFIG)")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="decision threshold for binary models (default: the "
                                                       "serving config's, else 0.5)")] = None,
    variant: Annotated[str, typer.Option(help="ONNX variant whose predictions the report shows")] = DEFAULT_VARIANT,
    per_day: Annotated[Optional[int], typer.Option(min=1, help="inputs a day, to phrase the errors as 'every day, on "
                                                   "average N would be ...'")] = None,
) -> None:
    """Write a stakeholder report (report/index.html with PNGs) into a version directory: the test metrics in plain
    words, errors per 1,000 inputs at the serving threshold, real failures, calibration, the export trade-offs."""
    name = model.strip().lower()
    if name not in (*MODELS, "all"):
        raise ModelyardError(f"unknown model {model!r}; choose from {', '.join(MODELS)}, all")
    if version is not None and (name == "all" or version < 1):
        raise ModelyardError(f"--version {version}: " + ("versions start at 1" if version < 1 else
                                                          "give one model, not 'all'"))
    settings = load_settings(repo=repo, data_dir=data_dir, config=config)
    if settings.data_dir is None:
        raise ModelyardError("no dataset folder: give --data-dir or set MODELYARD_DATA_DIR (the report scores the "
                             "real test split)")
    from modelyard.repository import ModelRepository

    repository = ModelRepository(settings.repo)
    names = [n for n in MODELS if repository.versions(n)] if name == "all" else [name]
    if not names:
        raise ModelyardError(f"no models in {settings.repo}; run: make models")
    from report.evaluate import evaluate, onnx_variant

    jobs = [(n, repository.resolve(n, version), serving_threshold(settings.config, n, threshold)) for n in names]
    for n, v, _ in jobs:
        onnx_variant(repository.manifest(n, v), variant)
    from rich.console import Console

    from report.page import build
    from report.publish import publish

    console = Console()
    for n, v, (cut, source) in jobs:
        manifest = repository.manifest(n, v)
        with console.status(f"{n} v{v}: scoring the test split with {variant}") as status:
            def progress(done: int, total: int) -> None:
                status.update(f"{n} v{v}: scoring the test split with {variant}: {done:,}/{total:,} rows")

            ev = evaluate(manifest, repository.path(n, v), variant, settings.data_dir, progress=progress)
            status.update(f"{n} v{v}: drawing the report")
            path = publish(repository, n, v, build(ev, cut, source, per_day))
        console.print(f"{n} v{v}: report written to {path}")
