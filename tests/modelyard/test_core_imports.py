"""The core (``modelyard``) is numpy-only: importing every one of its modules imports no stage, neither
TensorFlow nor the ``modelyard`` command (:mod:`modelyard_cli`, whose job is importing the stages)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE_THE_CORE = (
    "modelyard_cli",
    "tfshared",
    "training",
    "export",
    "serving",
    "report",
    "audit",
    "loadtests",
    "tensorflow",
    "tf_keras",
)

CODE = f"""
import importlib, pkgutil, sys
import modelyard
names = [m.name for m in pkgutil.iter_modules(modelyard.__path__, 'modelyard.') if m.name != 'modelyard.__main__']
for name in names:
    importlib.import_module(name)
loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({OUTSIDE_THE_CORE!r}))
print(len(names), loaded)
"""


def test_the_core_imports_no_stage_and_no_tensorflow():
    r = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    count, loaded = r.stdout.split(" ", 1)
    assert int(count) >= 10 and loaded.strip() == "[]", r.stdout
