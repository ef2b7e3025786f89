"""Loading a model version: verified against its manifest's sha256, each variant loaded by its runtime, warmed up
and its output shape checked, before it takes traffic. Also the signature of a version's files (a refused version
is tried again when it changes) and the start-up check of ``--device cuda``."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from modelyard.manifest import MANIFEST_FILE, Manifest, VariantRecord
from modelyard.repository import ModelRepository
from modelyard.settings import Settings
from serving.codecs import ModelCodec
from serving.runtimes import runtime_class, runtime_info
from serving.runtimes.base import Runtime, RuntimeLoadError
from serving.servables import Servable


def signature(vdir: Path) -> tuple:
    """Every file of a version directory as (relative path, size, mtime_ns, inode), read from ``stat`` alone.

    Any change to any file (a copy into the directory going on, a broken artifact repaired in place, a file
    replaced by rename) signs differently, so a refused version is tried again; its manifest need not be touched.
    """
    files = []
    for dirpath, _, names in os.walk(vdir):
        for n in names:
            path = os.path.join(dirpath, n)
            try:
                st = os.stat(path)
            except OSError:  # removed while walked: the next poll sees the change
                continue
            files.append((os.path.relpath(path, vdir), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(sorted(files))


def open_runtime(vdir: Path, rec: VariantRecord, settings: Settings, device: str | None = None) -> Runtime:
    """A variant's runtime, loaded (not warmed up), on ``device`` or the settings' device."""
    rt = runtime_class(rec.format)(
        vdir / rec.path, rec, device or settings.device, settings.threads, settings.cuda_options()
    )
    rt.load()
    return rt


def load_version(
    repo: ModelRepository,
    name: str,
    version: int,
    variants: list[str],
    settings: Settings,
    threshold: float,
    named: Collection[str],
) -> list[Servable]:
    """Verify, load and warm up one version's ``variants`` (blocking: runs in a worker thread). A variant that
    export validation rejected is refused unless it is in ``named`` (asked for on purpose)."""
    vdir = repo.path(name, version)
    manifest = Manifest.read(vdir / MANIFEST_FILE)
    problems = repo.verify(name, version)
    if problems:
        raise RuntimeLoadError(f"sha256 check against manifest failed: {'; '.join(problems[:5])}")
    codec = ModelCodec(manifest, vdir, threshold)
    example = codec.example(8)
    out_width = manifest.outputs[0].shape[-1]
    loaded = []
    for vname in variants:
        rec = _variant(manifest, name, vname, named)
        rt = open_runtime(vdir, rec, settings)
        rt.warmup(example)
        y = rt.predict(example[:2])
        if y.ndim != 2 or (out_width and y.shape[1] != out_width):
            raise RuntimeLoadError(f"variant '{vname}' outputs shape {list(y.shape)}, manifest says [N, {out_width}]")
        loaded.append(Servable(name, version, vname, rec, manifest, rt, codec))
    return loaded


def _variant(manifest: Manifest, name: str, vname: str, named: Collection[str]) -> VariantRecord:
    rec = manifest.variants.get(vname)
    if rec is None:
        raise RuntimeLoadError(
            f"no variant '{vname}' (variants: {', '.join(manifest.variants) or 'none'}); "
            f"export it first: modelyard export {name}"
        )
    if rec.status == "rejected" and vname not in named:
        raise RuntimeLoadError(
            f"variant '{vname}' was rejected by export validation ({rec.reason or 'no reason given'}); "
            f"serve it anyway with --variant {vname}"
        )
    return rec


def preflight(settings: Settings) -> None:
    """Fail at startup, not later, when ``--device cuda`` cannot run: load the first model's artifact on it."""
    if settings.device != "cuda":
        return
    repo = ModelRepository(settings.repo)
    variant = settings.variant or runtime_info(settings.runtime).default_variant
    for name in repo.model_names():
        vdir = repo.path(name, repo.resolve(name))
        rec = Manifest.read(vdir / MANIFEST_FILE).variants.get(variant)
        if rec is not None:
            open_runtime(vdir, rec, settings, "cuda")
            return
    if not runtime_info(settings.runtime).gpu:
        raise RuntimeLoadError(f"--device cuda: the {settings.runtime} runtime runs on CPU only; use --runtime onnx")
