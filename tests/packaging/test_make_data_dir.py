"""`make models` (and so `make serve`) passes --data-dir only when there is a data folder; without one,
`modelyard train` and `modelyard export` download with keras.datasets. Read from `make -n`: nothing runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _stage_commands(tmp_path: Path, data_dir: str) -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    r = subprocess.run(
        ["make", "-n", "models", f"DATA_DIR={data_dir}", f"REPO={tmp_path / 'models'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    return re.findall(r"modelyard (?:train|export) [^|;]*", r.stdout)


def test_no_data_folder_means_keras_datasets(tmp_path):
    commands = _stage_commands(tmp_path, "")
    assert len(commands) == 2 and not any("--data-dir" in c for c in commands), commands


def test_a_data_folder_is_passed_on(tmp_path):
    commands = _stage_commands(tmp_path, "/data/keras")
    assert len(commands) == 2 and all("--data-dir /data/keras" in c for c in commands), commands
