"""The report written into its version directory the way every artifact is: built in a staged copy of the
version, which replaces it whole (``ModelRepository.update_version``), so the manifest's sha256 list covers the
report's files and readers see the old report or the new one, never a part."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from modelyard.repository import ModelRepository
from report.page import Page, render

REPORT_DIR = "report"
INDEX, SUMMARY = "index.html", "summary.json"


def publish(repo: ModelRepository, name: str, version: int, page: Page) -> Path:
    """Write ``<version>/report/`` (index.html, summary.json, the PNGs); returns the page's final path."""
    with repo.update_version(name, version) as stage:
        out = stage.dir / REPORT_DIR
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        for file_name, draw in page.figures.items():
            draw(out / file_name)
        (out / INDEX).write_text(render(page), encoding="utf-8")
        (out / SUMMARY).write_text(json.dumps(page.summary, indent=2) + "\n", encoding="utf-8")
    return repo.path(name, version) / REPORT_DIR / INDEX
