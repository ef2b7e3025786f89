"""``python -m export ...``: the same command as ``modelyard export ...``."""

import sys

import typer

from export.cli import export
from modelyard.errors import ModelyardError


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(export)
    try:
        app()
    except ModelyardError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
