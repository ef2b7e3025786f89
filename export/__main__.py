"""``python -m export ...``: the same command as ``modelyard export ...``."""

import typer

from export.cli import export
from modelyard.command import run


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(export)
    run(app)


if __name__ == "__main__":
    main()
