"""Screenshots for the README: the web console of a real ``modelyard serve`` (with some traffic, each try-it form
answered and, with ground truth sent back, the prediction log's live accuracy) and the stakeholder report of each
model. Built in a copy of the repository (``modelyard report all`` writes the reports there), which stays untouched.

    .venv/bin/python tests/serving/console_figures.py --repo models --data-dir ../shared/datasets --out docs
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared browser helper
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx  # noqa: E402
from browser import headless_chromium, local_page  # noqa: E402

from loadtests.process import ServerProcess, free_port  # noqa: E402
from modelyard.datasets import read_imdb_raw  # noqa: E402

MODELS = ("imdb", "reuters", "boston")


def traffic(url: str, data_dir: Path, n: int = 200) -> None:
    """``n`` real IMDB test reviews, each answer's ground truth sent back as feedback."""
    with httpx.Client(base_url=url, timeout=30) as client:
        items = []
        for i, (text, label) in zip(range(n), read_imdb_raw(data_dir, "test")):
            r = client.post(
                "/v2/models/imdb/infer",
                json={
                    "id": f"shot-{i}",
                    "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}],
                },
            )
            r.raise_for_status()
            items.append({"request_id": f"shot-{i}", "label": ["negative", "positive"][label]})
        time.sleep(1)  # the log's writer thread
        client.post("/v2/models/imdb/feedback", json={"items": items}).raise_for_status()


def steady_load(url: str, seconds: float) -> None:
    """Requests to every model, one at a time, for ``seconds``: what the live figures show."""
    bodies = {
        "imdb": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a fine, moving film"]}],
        "reuters": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["wheat exports rose"]}],
        "boston": [
            {
                "name": "features",
                "shape": [1, 13],
                "datatype": "FP32",
                "data": [0.1, 0, 8, 0, 0.5, 6.2, 60, 4, 5, 300, 18, 390, 10],
            }
        ],
    }
    end = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() < end:
            for name, inputs in bodies.items():
                client.post(f"/v2/models/{name}/infer", json={"inputs": inputs}).raise_for_status()


def console(browser, url: str, data_dir: Path, path: Path) -> None:
    with local_page(browser, viewport={"width": 1280, "height": 1500}) as page:
        page.goto(url + "/ui/")
        page.wait_for_selector("#model-imdb .state-AVAILABLE")
        traffic(url, data_dir)
        for name in MODELS:
            page.click(f"form[data-model={name}] button[type=submit]")
            page.wait_for_selector(f"form[data-model={name}] .answer .label")
        page.wait_for_selector("[data-live=quality]", timeout=30000)  # the live gauges refresh every 15 s
        load = threading.Thread(target=steady_load, args=(url, 6.0))
        load.start()
        page.wait_for_function(
            "!/^(0\\.0|–)/.test(document.querySelector('#model-boston [data-live=rate] b').textContent)"
        )  # a poll inside the load
        page.screenshot(path=str(path), full_page=True)
        load.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=Path("models"))
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("docs"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        shutil.copytree(args.repo, root, ignore=shutil.ignore_patterns(".*"))
        subprocess.run(
            [sys.executable, "-m", "modelyard", "report", "all", "--repo", str(root), "--data-dir", str(args.data_dir)],
            check=True,
        )
        port = free_port()
        server = ServerProcess(
            [
                sys.executable,
                "-m",
                "modelyard",
                "serve",
                "--repo",
                str(root),
                "--port",
                str(port),
                "--prediction-log",
                f"sqlite:///{tmp}/log.db",
            ],
            Path(tmp) / "server.log",
            port=port,
            env={"MODELYARD_GRPC_PORT": "0", "MODELYARD_ACCESS_LOG": "false"},
        )
        try:
            server.wait_ready(server.url + "/v2/health/ready", 120)
            with headless_chromium() as browser:
                console(browser, server.url, args.data_dir, args.out / "console.png")
                for name in MODELS:
                    with local_page(browser, viewport={"width": 1000, "height": 1800}) as page:
                        page.goto((root / name / "1" / "report" / "index.html").as_uri())
                        page.screenshot(path=str(args.out / f"report-{name}.png"))
        finally:
            server.stop()
    print(f"wrote {args.out}/console.png and report-<model>.png")


if __name__ == "__main__":
    main()
