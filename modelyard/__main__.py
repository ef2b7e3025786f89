"""``python -m modelyard``: the ``modelyard`` command (:mod:`modelyard_cli`). Run as a script only; no module of
the core imports this one."""

from modelyard_cli import main

main()
