"""Content hashes for dataset files and repository artifacts."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_digests(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every regular file under ``root``, keyed by its POSIX path relative to ``root``."""
    digests = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel not in exclude:
            digests[rel] = file_digest(path)
    return digests
