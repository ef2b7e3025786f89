"""The browser bundles' figures for the README: each bundle's size and gzip size, and the time from the start of
loading its page (``file://``, headless Chromium, a fresh browser context each time) to its first prediction;
optionally a screenshot of each page. Built in a copy of the repository, which stays untouched.

    .venv/bin/python tests/export/browser_figures.py --repo models --loads 5 --screenshots docs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared browser helper
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from browser import await_in_page, headless_chromium, local_page  # noqa: E402
from export.browser_bundle import BROWSER_DIR, file_sizes  # noqa: E402
from modelyard.repository import ModelRepository  # noqa: E402

MODELS = ("imdb", "reuters", "boston")


def first_prediction_ms(browser, url: str, screenshot: Path | None = None) -> float:
    with local_page(browser, viewport={"width": 1100, "height": 900}) as page:
        page.goto(url)
        ms = await_in_page(page, "modelyard.ready.then(() => modelyard.firstPredictionMs)")
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=Path("models"))
    ap.add_argument("--loads", type=int, default=5, help="page loads per bundle")
    ap.add_argument("--screenshots", type=Path, help="folder for browser-<model>.png")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        shutil.copytree(args.repo, root, ignore=shutil.ignore_patterns(BROWSER_DIR, ".*"))
        subprocess.run(
            [sys.executable, "-m", "modelyard", "export", "all", "--browser", "--repo", str(root)], check=True
        )
        repo = ModelRepository(root)
        rows = []
        load_before = os.getloadavg()[0]
        with headless_chromium() as browser:
            for name in (n for n in MODELS if repo.versions(n)):
                version = repo.resolve(name)
                folder = repo.path(name, version) / BROWSER_DIR
                url = (folder / "index.html").as_uri()
                shot = args.screenshots / f"browser-{name}.png" if args.screenshots else None
                times = [first_prediction_ms(browser, url, shot if i == 0 else None) for i in range(args.loads)]
                sizes = file_sizes(folder)
                size, gz = sum(s for s, _ in sizes.values()), sum(g for _, g in sizes.values())
                chosen = json.loads((folder / "bundle.json").read_text())["variant"]
                rows.append(
                    f"| {name} v{version} | {chosen} | {size / 1e6:.2f} MB | {gz / 1e6:.2f} MB | "
                    f"{sizes['model.js'][1] / 1e3:.0f} kB | {statistics.median(times):.0f} ms "
                    f"({min(times):.0f}-{max(times):.0f}) |"
                )
    print(
        f"\nload average (1 min) before and after the page loads: {load_before:.1f}, {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(
        f"\n| bundle | runs | size | gzip | of which model (gzip) | first prediction, median of {args.loads} "
        "loads (min-max) |\n|---|---|---|---|---|---|"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
