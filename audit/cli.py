"""``modelyard audit sample | import | report``: every option also from ``MODELYARD_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from modelyard.settings import load_settings

audit = typer.Typer(
    no_args_is_help=True,
    help="Audit the models in the wild: sample logged predictions for "
    "annotation, import the labels, report live quality and A/B outcomes.",
)

LogOpt = Annotated[
    Optional[str],
    typer.Option("--prediction-log", help="the database the server logs to (env MODELYARD_PREDICTION_LOG)"),
]
RepoOpt = Annotated[Optional[Path], typer.Option(help="model repository (env MODELYARD_REPO; default ./models)")]
SinceOpt = Annotated[Optional[str], typer.Option(help="only predictions from this date (YYYY-MM-DD, UTC) on")]


@audit.command("sample")
def sample(
    model: Annotated[str, typer.Option(help="model name, e.g. imdb")],
    out: Annotated[Path, typer.Option(help="the CSV to write")],
    n: Annotated[int, typer.Option(min=1, help="rows to draw")] = 200,
    since: SinceOpt = None,
    prediction_log: LogOpt = None,
    repo: RepoOpt = None,
    seed: Annotated[int, typer.Option(help="random seed of the draw")] = 113,
) -> None:
    """Draw logged predictions without ground truth, stratified by predicted class and day, into a CSV with the
    input, the prediction and an empty column for the annotator."""
    from audit.sample import draw, write_csv
    from audit.store import open_log, parse_since, predictions, task_of

    settings = load_settings(prediction_log=prediction_log, repo=repo)
    task = task_of(settings.repo, model)
    regression = not task.predicts_labels
    rows = predictions(open_log(settings.prediction_log), model, parse_since(since), labelled=False)
    chosen = draw(rows, n, regression, seed)
    write_csv(out, model, chosen, regression)
    typer.echo(
        f"{out}: {len(chosen)} of {len(rows)} unlabelled predictions of {model}; fill in the "
        f"'{task.truth_field}' column, then: modelyard audit import {out}"
    )


@audit.command("import")
def import_(
    csv_file: Annotated[Path, typer.Argument(help="the annotated CSV")],
    prediction_log: LogOpt = None,
    repo: RepoOpt = None,
) -> None:
    """Store the labels (or values) of an annotated batch as ground truth; a file with any bad row stores
    nothing and every bad row is named."""
    from audit.importer import import_batch
    from audit.store import open_log, task_of

    settings = load_settings(prediction_log=prediction_log, repo=repo)
    done = import_batch(open_log(settings.prediction_log), csv_file, lambda m: task_of(settings.repo, m))
    typer.echo(
        f"{csv_file}: {done.stored} stored, {done.replaced} replaced an earlier truth (the last one "
        f"counts), {done.blank} left blank and skipped"
    )


@audit.command("report")
def report(
    model: Annotated[str, typer.Option(help="model name, e.g. imdb")],
    out: Annotated[Path, typer.Option(help="folder for report.html, report.json and the PNGs")],
    since: SinceOpt = None,
    prediction_log: LogOpt = None,
    repo: RepoOpt = None,
    data_dir: Annotated[
        Optional[Path],
        typer.Option(help="Keras dataset files, for Boston's PSI against its training split (env MODELYARD_DATA_DIR)"),
    ] = None,
    control: Annotated[
        Optional[str], typer.Option(help="the A/B control arm, e.g. v1/onnx_fp32 (default: the lowest version)")
    ] = None,
    candidate: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            help="a new version (e.g. trained with "
            "--extra-data, exported) to compare with the serving "
            "one on audited rows it did not train on",
        ),
    ] = None,
) -> None:
    """Live quality per version and arm (95% intervals), confusion matrix, calibration, input drift, the A/B
    outcome of a traffic split, a shadow's agreement, and a candidate version against the serving one."""
    from audit.report import build, write
    from audit.store import open_log, parse_since

    settings = load_settings(prediction_log=prediction_log, repo=repo, data_dir=data_dir)
    r = build(
        open_log(settings.prediction_log),
        settings.repo,
        model,
        parse_since(since),
        settings.data_dir,
        control,
        candidate,
    )
    for f in write(r, out):
        typer.echo(str(f))
