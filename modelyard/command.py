"""Running a Typer command the way every ``modelyard`` command runs: an error the user can fix is one line on
stderr and exit code 2, not a traceback. Used by the ``modelyard`` command (:mod:`modelyard_cli`) and by a stage's
own ``python -m <stage>``."""

from __future__ import annotations

import sys

import typer

from modelyard.errors import ModelyardError
from modelyard.extras import missing_extra


def run(typer_app: typer.Typer) -> None:
    """Run a Typer app; a :class:`ModelyardError`, or a library of an extra that is not installed, is one line."""
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
