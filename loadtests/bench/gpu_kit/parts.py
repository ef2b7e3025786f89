"""One tar.gz of the kit cut into parts of a device call's size, each in its own folder with ``kit.json`` (the
kit's id, the part's number, and the sha256 of every part); and, on the GPU machine, the parts checked as they
arrive, joined and unpacked. Standard library and :mod:`modelyard.hashing` only: it runs before any install."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import time
import uuid
from pathlib import Path

from modelyard.errors import ModelyardError
from modelyard.hashing import file_digest

INFO = "kit.json"
"""In each part's folder."""
META = "KIT.json"
"""In the archive: the Python version the wheels are for, and which models are servable."""
PART_NAME = "kit.tgz.{:02d}"


def write_archive(entries: list[tuple[Path, str]], meta: dict, out: Path) -> list[tuple[int, str]]:
    """A gzipped tar of ``entries`` (links followed) and META; returns (size, name) of every file in it."""
    listing = []
    with tarfile.open(out, "w:gz", compresslevel=1, dereference=True) as tar:
        data = (json.dumps(meta, indent=2) + "\n").encode()
        info = tarfile.TarInfo(META)
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
        tar.addfile(info, io.BytesIO(data))
        listing.append((len(data), META))
        for src, name in entries:
            tar.add(src, arcname=name)
            files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
            listing += [
                (p.stat().st_size, f"{name}/{p.relative_to(src).as_posix()}" if p != src else name) for p in files
            ]
    return listing


def split(archive: Path, kit_dir: Path, part_bytes: int, python: str) -> list[Path]:
    """Cut ``archive`` into folders kit_dir/1..N, replacing those of an earlier kit; returns the folders."""
    staging = kit_dir / f".parts-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        n = _cut(archive, staging, part_bytes, python)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for old in kit_dir.iterdir():
        if old.name.isdigit():
            shutil.rmtree(old)
    folders = []
    for k in range(1, n + 1):
        (staging / str(k)).rename(kit_dir / str(k))
        folders.append(kit_dir / str(k))
    staging.rmdir()
    return folders


def _cut(archive: Path, staging: Path, part_bytes: int, python: str) -> int:
    """staging/1..N with a part and kit.json each; returns N."""
    digests, total = [], archive.stat().st_size
    with open(archive, "rb") as f:
        while chunk := f.read(part_bytes):
            part = staging / str(len(digests) + 1) / PART_NAME.format(len(digests))
            part.parent.mkdir()
            part.write_bytes(chunk)
            digests.append(hashlib.sha256(chunk).hexdigest())
    kit_id = hashlib.sha256("".join(digests).encode()).hexdigest()[:16]
    built = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for k in range(1, len(digests) + 1):
        (staging / str(k) / INFO).write_text(
            json.dumps(
                {
                    "kit": kit_id,
                    "part": k,
                    "parts": len(digests),
                    "sha256": digests,
                    "bytes": total,
                    "python": python,
                    "built": built,
                },
                indent=2,
            )
            + "\n"
        )
    return len(digests)


def read_info(folder: Path) -> dict:
    try:
        return json.loads((folder / INFO).read_text())
    except FileNotFoundError:
        raise ModelyardError(
            f"{folder / INFO} is missing: carry {folder.name}'s folder of the kit ({folder}) in this call"
        ) from None


def receive(folder: Path, k: int, n: int, state: Path) -> tuple[dict, list[int]]:
    """Keep part ``k`` of ``n`` from ``folder`` in state/parts, checked against the kit's sha256 list; parts of
    another kit there are dropped. Returns the kit's info and the numbers of the parts still missing."""
    info = read_info(folder)
    if (info["part"], info["parts"]) != (k, n):
        raise ModelyardError(f"{folder} holds part {info['part']} of {info['parts']}, not {k} of {n}")
    parts = state / "parts"
    id_file = state / "kit.id"
    if not id_file.is_file() or id_file.read_text().strip() != info["kit"]:  # another kit's parts: start afresh
        shutil.rmtree(parts, ignore_errors=True)
        (state / "installed").unlink(missing_ok=True)
        parts.mkdir(parents=True)
        id_file.write_text(info["kit"] + "\n")
    name = PART_NAME.format(k - 1)
    tmp = parts / f".{name}.tmp"
    shutil.copyfile(folder / name, tmp)
    if file_digest(tmp) != info["sha256"][k - 1]:
        tmp.unlink()
        raise ModelyardError(f"{folder / name}: sha256 differs from the kit's list: rebuild the kit (make gpu-kit)")
    tmp.replace(parts / name)
    missing = [i for i in range(1, n + 1) if not (parts / PART_NAME.format(i - 1)).is_file()]
    return info, missing


def unpack(info: dict, state: Path, into: Path) -> dict:
    """Join the parts in state/parts (each checked again), unpack them into ``into``; returns META."""
    parts = [state / "parts" / PART_NAME.format(i) for i in range(info["parts"])]
    joined = state / "kit.tgz"
    with open(joined, "wb") as out:
        for part, digest in zip(parts, info["sha256"]):
            if file_digest(part) != digest:
                raise ModelyardError(f"{part}: sha256 differs from the kit's list (changed since it arrived)")
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    try:
        with tarfile.open(joined, "r:gz") as tar:
            # the "data" filter (Python >= 3.11.4) refuses links and paths out of ``into``
            tar.extractall(into, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ModelyardError(f"unpacking the joined parts failed: {e}") from None
    finally:
        joined.unlink()
    return json.loads((into / META).read_text())
