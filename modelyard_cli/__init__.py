"""The ``modelyard`` command: importing every stage's command is this package's job, so that the numpy-only
core (``modelyard``) imports none. Each stage's command lives with its stage (``<stage>/cli.py``) and is
registered here; stages import heavy libraries only inside their commands, so ``modelyard --help`` and serving
stay light, and a command whose extra is not installed (``pip install modelyard[serve]`` has no TensorFlow) says
which to install."""

from __future__ import annotations

import typer

from audit.cli import audit
from export.cli import export
from loadtests.bench.cli import bench
from loadtests.cli import loadtest
from modelyard.command import run
from report.cli import report
from serving.cli import serve
from training.cli import train

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train, export, serve and load-test the IMDB, Reuters and Boston housing models.",
)
for command in (train, export, serve, loadtest, bench, report):
    app.command()(command)
app.add_typer(audit, name="audit")


@app.callback()
def _root() -> None:
    """Train, export, serve and load-test the IMDB, Reuters and Boston housing models."""


def main() -> None:
    run(app)
