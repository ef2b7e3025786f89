"""``gpu_kit facts KIT``, run by the kit's venv python on the GPU machine: what the measurement runs on, the served
models checked by the model repository's own verification (as serving will check them), and whether a CUDA
session opens (``modelyard.onnxrun``, which refuses a silent CPU fallback). Exit status 1 when a served model
fails its verification or the kit's packages do not import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path


def tool_version(cmd: list[str]) -> str:
    if not shutil.which(cmd[0]):
        return f"{cmd[0]}: not found"
    r = subprocess.run(cmd, capture_output=True, text=True)
    return f"{cmd[0]}: {shutil.which(cmd[0])}, {(r.stdout + r.stderr).strip().splitlines()[0]}"


def versions() -> list[str]:
    import fastapi
    import numpy
    import onnxruntime as ort
    import pydantic
    import uvicorn

    return [
        f"{sys.executable} {sys.version.split()[0]}",
        f"onnxruntime {ort.__version__} {ort.__file__}",
        f"providers {ort.get_available_providers()}",
        f"numpy {numpy.__version__} fastapi {fastapi.__version__} uvicorn {uvicorn.__version__} "
        f"pydantic {pydantic.__version__}",
        tool_version(["wrk", "--version"]),
        tool_version(["k6", "version"]),
        tool_version(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]),
    ]


def verified_models(kit: Path) -> tuple[list[str], list[str]]:
    """Lines about each served model, and the problems the repository's verification found."""
    from modelyard.repository import ModelRepository

    repo = ModelRepository(kit / "models")
    lines, problems = [], []
    for name in json.loads((kit / "KIT.json").read_text())["served"]:
        version = repo.resolve(name)
        found = repo.verify(name, version)
        problems += [f"{name}/{version}: {p}" for p in found]
        lines.append(
            f"model {name}/{version}: " + ("verified against its manifest" if not found else f"{len(found)} problem(s)")
        )
    return lines, problems


def cuda_session(kit: Path) -> str:
    """The provider a CUDA session of the first model's ONNX fp32 file gets, or why it cannot open."""
    from modelyard.manifest import MANIFEST_FILE, Manifest
    from modelyard.onnxrun import CudaUnavailable, open_session

    manifest_file = next(iter(sorted((kit / "models").glob(f"*/*/{MANIFEST_FILE}"))))
    path = manifest_file.parent / Manifest.read(manifest_file).variants["onnx_fp32"].path
    try:
        return f"CUDA session ({path.relative_to(kit)}): {open_session(path, 'cuda').get_providers()[0]}"
    except CudaUnavailable as e:
        return f"CUDA session ({path.relative_to(kit)}): unavailable: {e}"


def main(kit: Path) -> int:
    print("\n".join(versions()))
    lines, problems = verified_models(kit)
    print("\n".join(lines + [cuda_session(kit)] + [f"FAILED {p}" for p in problems]))
    return 1 if problems else 0
