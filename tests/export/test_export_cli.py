"""User mistakes: a one-line error and a non-zero exit, before TensorFlow is even imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args, repo):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "export", *args, "--repo", str(repo)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args, needle",
    [
        (["mnist"], "unknown model 'mnist'"),
        (["boston", "--version", "7"], "has no version 7"),
        (["boston", "--prune", "1.5"], "outside 0-0.99"),
        (["boston", "--prune", "-0.1"], "outside 0-0.99"),
        (["boston", "--formats", "tflite,pb"], "unknown format 'pb'"),
        (["boston", "--quantize", "int4"], "unknown quantization 'int4'"),
    ],
)
def test_errors_are_one_line(tiny_trained, args, needle):
    r = _run(args, tiny_trained["root"])
    assert r.returncode != 0
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr


def test_unknown_model_in_empty_repo(tmp_path):
    r = _run(["reuters"], tmp_path / "nothing")
    assert r.returncode == 2 and "no model 'reuters'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_modelyard_cli_registers_export():
    from typer.testing import CliRunner

    from modelyard_cli import app

    result = CliRunner().invoke(app, ["export", "--help"])
    assert result.exit_code == 0 and "--prune" in result.output and "--formats" in result.output
