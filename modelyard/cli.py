"""The ``modelyard`` command. Each stage's command lives with its stage and is imported here; stages
import heavy libraries only inside their commands, so ``modelyard --help`` and serving stay light, and a
command whose extra is not installed (``pip install modelyard[serve]`` has no TensorFlow) says which to install."""

from __future__ import annotations

import sys

import typer

from modelyard.errors import ModelyardError
from modelyard.extras import missing_extra
from audit.cli import audit
from export.cli import export
from loadtests.bench.cli import bench
from loadtests.cli import loadtest
from report.cli import report
from serving.cli import serve
from training.cli import train

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, export, serve and load-test the IMDB, Reuters and Boston housing models.")
for command in (train, export, serve, loadtest, bench, report):
    app.command()(command)
app.add_typer(audit, name="audit")


@app.callback()
def _root() -> None:
    """Train, export, serve and load-test the IMDB, Reuters and Boston housing models."""


def run(typer_app: typer.Typer) -> None:
    """Run a Typer app; an error the user can fix is one line on stderr and exit code 2, not a traceback.
    A library of an extra that is not installed is one of those."""
    try:
        typer_app()
    except ModelyardError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except ModuleNotFoundError as e:
        error = missing_extra(e)
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    run(app)


if __name__ == "__main__":
    main()
