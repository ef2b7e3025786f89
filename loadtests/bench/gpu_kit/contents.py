"""What goes into the kit besides the wheels, as (source, name in the kit) pairs: the models, checked against
their manifests by the model repository, the dataset files, wrk with its libraries, the serving-test models."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from modelyard.errors import ModelyardError
from modelyard.manifest import MANIFEST_FILE, TextPreprocessing
from modelyard.repository import ModelRepository

Entry = tuple[Path, str]
DATASET_FILES = [
    "imdb_raw/test.jsonl.gz",
    "imdb_word_index.json",
    "reuters.npz",
    "reuters_word_index.json",
    "boston_housing.npz",
]
"""What the GPU check and the bench read (loadtests/bench/engine.py: real_test_rows)."""
GLIBC = (
    "linux-vdso",
    "ld-linux",
    "libc.so",
    "libm.so",
    "libpthread.so",
    "libdl.so",
    "librt.so",
    "libgcc_s.so",
    "libresolv.so",
)
"""Libraries every Linux has: wrk's others travel with it."""
FIXTURES_BUILDER = "tests/serving/build_fixtures.py"


def model_entries(repo_root: Path, served: set[str], log=print) -> list[Entry]:
    """The latest version of every model with an ONNX fp32 variant. A version that fails the repository's own
    verification (a file missing, changed, or not in the manifest) stops the build: serving would refuse it."""
    repo = ModelRepository(repo_root)
    entries: list[Entry] = []
    for name in repo.model_names():
        version = repo.resolve(name)
        manifest = repo.manifest(name, version)
        onnx = manifest.variants.get("onnx_fp32")
        if onnx is None:
            log(f"   {name}: no onnx_fp32 variant, left out (modelyard export {name})")
            continue
        problems = repo.verify(name, version)
        if problems:
            raise ModelyardError(f"{repo.path(name, version)} does not match its manifest: {'; '.join(problems)}")
        if name in served:  # serving checks every listed file's sha256: all of them come along
            files, how = sorted(manifest.files), "all manifest files (servable)"
        else:
            text = isinstance(manifest.preprocessing, TextPreprocessing)
            files = [onnx.path] + ([manifest.preprocessing.vocab_file] if text else [])
            how = "manifest, ONNX fp32" + (", vocabulary" if text else "") + " (GPU check only, not servable)"
        vdir = repo.path(name, version)
        pairs = [(vdir / rel, f"models/{name}/{version}/{rel}") for rel in [MANIFEST_FILE, *files]]
        size = sum(src.stat().st_size for src, _ in pairs)
        log(f"   {name}/{version}: {len(pairs)} files, {size / 2**20:.1f} MiB, {how}")
        entries += pairs
    if not entries:
        raise ModelyardError(f"no exported model in {repo_root}: make models")
    return entries


def dataset_entries(data_dir: Path, files: list[str] = DATASET_FILES, log=print) -> list[Entry]:
    missing = [f for f in files if not (data_dir / f).is_file()]
    if missing:
        raise ModelyardError(f"missing dataset file(s) {', '.join(missing)} in {data_dir} (set MODELYARD_DATA_DIR)")
    for f in files:
        log(f"   {f:<26} {(data_dir / f).stat().st_size / 2**20:6.1f} MiB")
    return [(data_dir / f, f"datasets/{f}") for f in files]


def wrk_entries(log=print) -> list[Entry]:
    """wrk and the libraries ldd finds for it beyond glibc (wrk/wrk, wrk/lib/*)."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise ModelyardError("wrk is not installed here: apt-get install wrk")
    ldd = subprocess.run(["ldd", wrk], capture_output=True, text=True)
    if ldd.returncode or "not found" in ldd.stdout:
        raise ModelyardError(f"ldd {wrk}: a library is missing here\n{ldd.stdout}{ldd.stderr}")
    entries = [(Path(wrk).resolve(), "wrk/wrk")]
    for line in ldd.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/") and not parts[0].startswith(GLIBC):
            entries.append((Path(parts[2]).resolve(), f"wrk/lib/{parts[0]}"))
            log(f"   {parts[0]} <- {parts[2]}")
    return entries


def fixture_entries(root: Path, prebuilt: Path | None, cache: Path, log=print) -> list[Entry]:
    """The serving tests' tiny models (repo and spare), built here with TensorFlow unless ``prebuilt`` has them."""
    fx = prebuilt if prebuilt and (prebuilt / "spare/imdb/1" / MANIFEST_FILE).is_file() else cache / "fixtures"
    if not (fx / "spare/imdb/1" / MANIFEST_FILE).is_file():
        shutil.rmtree(fx, ignore_errors=True)
        fx.mkdir(parents=True)
        log_file = cache / "fixtures.log"
        log(f"   building them into {fx} (TensorFlow: a few minutes; log: {log_file})")
        with open(log_file, "w") as out:
            r = subprocess.run(
                [sys.executable, FIXTURES_BUILDER, str(fx / "repo")], cwd=root, stdout=out, stderr=subprocess.STDOUT
            )
        if r.returncode:
            shutil.rmtree(fx, ignore_errors=True)
            raise ModelyardError(f"building the test models failed; see {log_file}")
    log(f"   {sum(1 for p in fx.rglob('*') if p.is_file())} files from {fx}")
    return [(fx / "repo", "fixtures/repo"), (fx / "spare", "fixtures/spare")]
