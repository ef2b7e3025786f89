"""``modelyard report``: options and the threshold are settled before any data is read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from modelyard.errors import ModelyardError
from modelyard.settings import load_settings

MODELS = ("imdb", "reuters", "boston")
DEFAULT_VARIANT = "onnx_fp32"


def _model_config(config: Path | None, name: str):
    from serving.serving_config import ServeConfig

    return ServeConfig.read(config).models.get(name) if config is not None else None


def serving_threshold(config: Path | None, name: str, threshold: float | None) -> tuple[float, str]:
    """The decision threshold and where it came from: ``--threshold``, else the serving config (the one the
    server reads), else the server's default."""
    from modelyard.tasks import DEFAULT_THRESHOLD

    if threshold is not None:
        if not 0 < threshold < 1:
            raise ModelyardError(f"--threshold {threshold}: a probability strictly between 0 and 1")
        return threshold, "--threshold"
    model = _model_config(config, name)
    if model is not None and "threshold" in model.model_fields_set:
        return model.threshold, f"the serving config {config}"
    return DEFAULT_THRESHOLD, "the server's default (no threshold in the serving config)"


def served_variant(config: Path | None, name: str, variant: str | None, default: str | None) -> str:
    """``--variant``, else the variant the server answers with: the serving config's, ``MODELYARD_VARIANT``, or
    ``onnx_fp32``."""
    model = _model_config(config, name)
    return variant or (model.variant if model is not None else None) or default or DEFAULT_VARIANT


@dataclass
class Job:
    name: str
    version: int
    variant: str
    threshold: float
    threshold_source: str


def plan(model: str, version: int | None, settings, threshold: float | None, variant: str | None) -> list[Job]:
    """What to report on, every option checked (model, version, threshold, ONNX variant) before any data is read."""
    from modelyard.repository import ModelRepository
    from report.evaluate import onnx_variant

    name = model.strip().lower()
    if name not in (*MODELS, "all"):
        raise ModelyardError(f"unknown model {model!r}; choose from {', '.join(MODELS)}, all")
    if version is not None and (name == "all" or version < 1):
        raise ModelyardError(
            f"--version {version}: " + ("versions start at 1" if version < 1 else "give one model, not 'all'")
        )
    if settings.data_dir is None:
        raise ModelyardError(
            "no dataset folder: give --data-dir or set MODELYARD_DATA_DIR (the report scores the real test split)"
        )
    repository = ModelRepository(settings.repo)
    names = [n for n in MODELS if repository.versions(n)] if name == "all" else [name]
    if not names:
        raise ModelyardError(f"no models in {settings.repo}; run: make models")
    jobs = []
    for n in names:
        v = repository.resolve(n, version)
        chosen = served_variant(settings.config, n, variant, settings.variant)
        onnx_variant(repository.manifest(n, v), chosen)
        jobs.append(Job(n, v, chosen, *serving_threshold(settings.config, n, threshold)))
    return jobs


def report(
    model: Annotated[str, typer.Argument(help="imdb, reuters, boston or all")],
    version: Annotated[Optional[int], typer.Option(help="version to report on (default: the latest)")] = None,
    repo: Annotated[
        Optional[Path], typer.Option(help="model repository (env MODELYARD_REPO; default ./models)")
    ] = None,
    data_dir: Annotated[
        Optional[Path], typer.Option(help="folder with the Keras dataset files (env MODELYARD_DATA_DIR)")
    ] = None,
    config: Annotated[
        Optional[Path], typer.Option(help="serving config whose threshold and variant to use (env MODELYARD_CONFIG)")
    ] = None,
    threshold: Annotated[
        Optional[float],
        typer.Option(help="decision threshold for binary models (default: the serving config's, else 0.5)"),
    ] = None,
    variant: Annotated[
        Optional[str],
        typer.Option(help="ONNX variant whose predictions the report shows (default: the served one, onnx_fp32)"),
    ] = None,
    per_day: Annotated[
        Optional[int],
        typer.Option(min=1, help="inputs a day, to phrase the errors as 'every day, on average N would be ...'"),
    ] = None,
) -> None:
    """Write a stakeholder report (report/index.html with PNGs) into a version directory: the test metrics in plain
    words, errors per 1,000 inputs at the serving threshold, real failures, calibration, the export trade-offs."""
    settings = load_settings(repo=repo, data_dir=data_dir, config=config)
    jobs = plan(model, version, settings, threshold, variant)
    from rich.console import Console

    from modelyard.repository import ModelRepository
    from report.evaluate import evaluate
    from report.page import build
    from report.publish import publish

    console, repository = Console(), ModelRepository(settings.repo)
    for job in jobs:
        n, v = job.name, job.version
        with console.status(f"{n} v{v}: scoring the test split with {job.variant}") as status:

            def progress(done: int, total: int) -> None:
                status.update(f"{n} v{v}: scoring the test split with {job.variant}: {done:,}/{total:,} rows")

            ev = evaluate(
                repository.manifest(n, v), repository.path(n, v), job.variant, settings.data_dir, progress=progress
            )
            status.update(f"{n} v{v}: drawing the report")
            path = publish(repository, n, v, build(ev, job.threshold, job.threshold_source, per_day))
        console.print(f"{n} v{v}: report written to {path}")
