"""``pip install modelyard[serve]`` in a fresh virtual environment: no TensorFlow, and it serves the exported
models over TF Serving REST and KServe V2 with the answers of the models' own ONNX files. The real exported
models (./models, from `make models`) when the checkout has them, else the tiny export-contract fixtures.
About 50 s, most of it pip installing onnxruntime; skipped only when pip cannot reach the package index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from loadtests.process import ServerProcess, free_port
from served_answers import check_v2_and_tfs, model_repo

ROOT = Path(__file__).resolve().parents[2]
TF_FAMILY = (
    "tensorflow",
    "tf-keras",
    "tf_keras",
    "tensorboard",
    "tensorflow-model-optimization",
    "tf2onnx",
    "ai-edge-litert",
    "ai_edge_litert",
    "matplotlib",
)


def _clean_env() -> dict[str, str]:
    """The environment without anything that would let the fresh venv import the checkout's packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _packages() -> list[str]:
    """The top-level packages that pyproject.toml's package find includes."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return [p.rstrip("*") for p in find["include"] if (ROOT / p.rstrip("*")).is_dir()]


def _pip_reaches_index(tmp: Path) -> bool:
    r = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(tmp), "typer==0.29.2"],
        capture_output=True,
        timeout=120,
    )
    return r.returncode == 0


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory) -> Path:
    """A venv with ``pip install <checkout>[serve]`` (built from a copy of the sources, not in the checkout)."""
    tmp = tmp_path_factory.mktemp("serve-extra")
    if not _pip_reaches_index(tmp / "probe"):
        pytest.skip("pip cannot reach the package index: the serve extra cannot be installed here")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for pkg in _packages():
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=_clean_env())
    r = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", f"{src}[serve]"],
        capture_output=True,
        text=True,
        timeout=600,
        env=_clean_env(),
        cwd=tmp,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return venv


def _run(venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
        cwd=venv.parent,
    )


def test_serve_extra_has_no_tensorflow(serve_venv):
    r = _run(serve_venv, "python", "-c", "import tensorflow")
    assert r.returncode != 0 and "No module named 'tensorflow'" in r.stderr
    listed = {p["name"].lower() for p in json.loads(_run(serve_venv, "pip", "list", "--format", "json").stdout)}
    assert {"onnxruntime-gpu", "fastapi", "uvicorn", "grpcio", "modelyard"} <= listed
    assert not listed & set(TF_FAMILY), listed & set(TF_FAMILY)
    # the installed package, not the checkout, is what runs
    r = _run(serve_venv, "python", "-c", "import serving; print(serving.__file__)")
    assert str(serve_venv) in r.stdout, r.stdout + r.stderr


def test_stage_without_its_extra_names_the_extra(serve_venv, tmp_path):
    r = _run(serve_venv, "modelyard", "train", "boston", "--repo", str(tmp_path / "m"))
    assert r.returncode == 2 and "pip install 'modelyard[train]'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = _run(serve_venv, "modelyard", "serve", "--runtime", "tflite", "--repo", str(tmp_path / "m"))
    assert r.returncode == 2 and "pip install 'modelyard[tflite]'" in r.stderr, r.stderr
    r = _run(serve_venv, "modelyard", "serve", "--ray", "--repo", str(tmp_path))
    assert r.returncode == 2 and "pip install 'modelyard[ray]'" in r.stderr, r.stderr


def test_serve_extra_serves_the_exported_models(serve_venv, fixture_root, tmp_path):
    repo = model_repo(fixture_root, tmp_path)
    port = free_port()
    server = ServerProcess(
        [
            str(serve_venv / "bin" / "modelyard"),
            "serve",
            "--repo",
            str(repo),
            "--port",
            str(port),
            "--grpc-port",
            "0",
            "--poll-interval-s",
            "0",
        ],
        tmp_path / "server.log",
        port=port,
        env={"PYTHONPATH": "", "MODELYARD_ACCESS_LOG": "false"},
        cwd=tmp_path,
    )
    try:
        server.wait_ready(server.url + "/v2/health/ready", 90)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            check_v2_and_tfs(client, repo)
    finally:
        server.stop()
