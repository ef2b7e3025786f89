"""Training without a data folder (``--data-dir`` unset, as `make models` runs on a machine without one): the
standard files come through keras.datasets, and a failed download is one clear error. No network is used: the
keras cache (~/.keras/datasets) of a temporary HOME is either empty behind an unreachable proxy, or holds the
genuine file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_NETWORK = {
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
}


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_DATA_DIR"}
    return {**env, **NO_NETWORK, "HOME": str(home)}


def test_failed_download_is_one_line_naming_data_dir(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "modelyard", "train", "boston", "--repo", str(tmp_path / "models")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=_env(tmp_path),
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert "cannot download the boston dataset with keras.datasets" in r.stderr and "--data-dir" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "models").exists()


@pytest.mark.realdata
def test_keras_datasets_gives_the_local_loaders_split(tmp_path, data_dir):
    cache = tmp_path / ".keras" / "datasets"
    cache.mkdir(parents=True)
    shutil.copy2(data_dir / "boston_housing.npz", cache / "boston_housing.npz")
    code = (
        "import sys, numpy as np\n"
        "from tfshared.data import load_dataset\n"
        "a, b = load_dataset('boston', None), load_dataset('boston', sys.argv[1])\n"
        "assert a.source == 'keras.datasets' and b.source == sys.argv[1]\n"
        "for f in ('x_train', 'y_train', 'x_test', 'y_test'):\n"
        "    np.testing.assert_array_equal(getattr(a, f), getattr(b, f))\n"
        "assert a.files == b.files, (a.files, b.files)\n"
        "print('same', len(a.x_train), len(a.x_test))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=_env(tmp_path),
    )
    assert r.returncode == 0 and "same 404 102" in r.stdout, r.stderr[-2000:]
