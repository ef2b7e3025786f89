"""``modelyard export --browser`` on real data: each bundle page, opened from ``file://`` in headless Chromium (and
once from a static host on 127.0.0.1) with every outside request failing the test, answers as Python onnxruntime
on the same ONNX file (within 1e-5) and gives the labels a real ``modelyard serve`` gives (same variant, same
threshold from a serving config) on real test rows; its JS tokenizer gives ``TextEncoder``'s ids on 1,000 real
reviews.

The models are small but genuine: fitted in numpy on the real training splits (naive Bayes, least squares), written
as ONNX fp32 plus an int8 QDQ variant from onnxruntime's static quantization (the export's own int8 route), so the
page runs int8 kernels. ``MODELYARD_BROWSER_REPO=models`` runs the same checks on a copy of an exported repository
instead (``-s`` prints the figures)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from browser import await_in_page, headless_chromium, local_page
from fitted_models import MODELS, fitted_repository
from export.browser_bundle import BROWSER_DIR
from modelyard.datasets import load_boston, load_reuters, read_imdb_raw
from modelyard.encoding import TextEncoder
from modelyard.manifest import Manifest
from modelyard.repository import ModelRepository

pytestmark = pytest.mark.realdata

TOLERANCE = 1e-5
IMDB_THRESHOLD = 0.6  # in the serving config the bundles are built with: the page must label as the server would


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo(data_dir, tmp_path_factory) -> ModelRepository:
    """A repository whose every model has its browser bundle (built by the export CLI itself)."""
    root = tmp_path_factory.mktemp("browser") / "models"
    source = os.environ.get("MODELYARD_BROWSER_REPO")
    if source:
        shutil.copytree(source, root, ignore=shutil.ignore_patterns(BROWSER_DIR, ".*"))
    else:
        fitted_repository(root, data_dir)
    config = root.parent / "serving.yaml"
    config.write_text(f"models:\n  imdb:\n    threshold: {IMDB_THRESHOLD}\n")
    run = subprocess.run(
        [sys.executable, "-m", "modelyard", "export", "all", "--browser", "--repo", str(root), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    print("\n" + run.stdout.strip())
    return ModelRepository(root)


@pytest.fixture(scope="module")
def chromium():
    with headless_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def pages(repo, chromium):
    """Each model's bundle page, opened once from file://, ready, with its time from the start of loading to the
    first prediction (ms)."""
    with contextlib.ExitStack() as stack:
        opened = {}
        for name in MODELS:
            page = stack.enter_context(local_page(chromium))
            opened[name] = (page, open_bundle(page, (_bundle_dir(repo, name) / "index.html").as_uri()))
            print(f"{name}: first prediction {opened[name][1]:.0f} ms after the page started loading (file://)")
        yield opened


@pytest.fixture(scope="module")
def server(repo, tmp_path_factory):
    """A real ``modelyard serve`` of the same repository: each model on the variant its bundle runs, IMDB at the
    same threshold."""
    from loadtests.process import ServerProcess, free_port

    d = tmp_path_factory.mktemp("browser-server")
    config = d / "serving.json"
    config.write_text(
        json.dumps(
            {
                "models": {
                    n: {
                        "variant": _bundle_config(repo, n)["variant"],
                        **({"threshold": IMDB_THRESHOLD} if n == "imdb" else {}),
                    }
                    for n in MODELS
                }
            }
        )
    )
    port = free_port()
    s = ServerProcess(
        [
            sys.executable,
            "-m",
            "modelyard",
            "serve",
            "--repo",
            str(repo.root),
            "--port",
            str(port),
            "--config",
            str(config),
        ],
        d / "server.log",
        port=port,
        env={"MODELYARD_GRPC_PORT": str(free_port()), "MODELYARD_ACCESS_LOG": "false"},
    )
    try:
        s.wait_ready(s.url + "/v2/health/ready", 90)
        yield s
    finally:
        s.stop()


def served(server, name: str, data: list, datatype: str, shape: list[int]) -> dict[str, list]:
    """The server's V2 answer: output name -> data."""
    import httpx

    r = httpx.post(
        f"{server.url}/v2/models/{name}/infer",
        timeout=60,
        json={
            "inputs": [
                {
                    "name": "features" if datatype == "FP32" else "text",
                    "shape": shape,
                    "datatype": datatype,
                    "data": data,
                }
            ]
        },
    )
    assert r.status_code == 200, r.text
    return {o["name"]: o["data"] for o in r.json()["outputs"]}


def open_bundle(page, url: str) -> float:
    """Load a bundle page; its time from the start of loading to its first prediction (ms)."""
    page.goto(url)
    return await_in_page(page, "modelyard.ready.then(() => modelyard.firstPredictionMs)")


def _bundle_dir(repo: ModelRepository, name: str) -> Path:
    return repo.path(name, repo.resolve(name)) / BROWSER_DIR


def _bundle_config(repo: ModelRepository, name: str) -> dict:
    return json.loads((_bundle_dir(repo, name) / "bundle.json").read_text())


def python_reference(repo: ModelRepository, name: str, x: np.ndarray) -> tuple[np.ndarray, Manifest]:
    """Python onnxruntime's outputs on the ONNX file the bundle embeds."""
    import onnxruntime as ort

    config = _bundle_config(repo, name)
    vdir = repo.path(name, repo.resolve(name))
    session = ort.InferenceSession(str(vdir / config["model_file"]), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0], repo.manifest(name)


def _agreement(name: str, browser: list[dict], y: np.ndarray, manifest: Manifest, answer: dict[str, list]) -> None:
    """The page's outputs within TOLERANCE of Python onnxruntime's, and its labels (or prices) the server's."""
    out = np.array([r["output"] for r in browser], dtype=np.float64)
    diff = float(np.abs(out - y).max())
    if manifest.task == "regression":
        vs_server = float(np.abs(out[:, 0] - np.array(answer["price"])).max())
        print(
            f"{name}: {len(y)} rows, max |price_browser - price_onnxruntime| = {diff:.2e}, "
            f"max |price_browser - price_server| = {vs_server:.2e}"
        )
        assert vs_server <= TOLERANCE * max(1.0, float(np.abs(out).max()))
    else:
        agree = sum(r["label"] == label for r, label in zip(browser, answer["label"]))
        print(f"{name}: {agree}/{len(y)} labels as the server's, max |p_browser - p_onnxruntime| = {diff:.2e}")
        assert agree == len(y)
    assert diff <= TOLERANCE


def _spread(items: list, n: int) -> list:
    return items[:: len(items) // n][:n]


# --- tests ---------------------------------------------------------------------------------------------------------


def test_bundle_is_published_with_the_smallest_accepted_onnx(repo):
    for name in MODELS:
        version, manifest = repo.resolve(name), repo.manifest(name)
        assert repo.verify(name, version) == []
        config = json.loads((_bundle_dir(repo, name) / "bundle.json").read_text())
        accepted = {n: r for n, r in manifest.variants.items() if r.format == "onnx" and r.status == "accepted"}
        assert config["variant"] == min(accepted, key=lambda n: accepted[n].gzip_bytes)
        assert config["model_sha256"] == manifest.files[config["model_file"]]
        assert {f"{BROWSER_DIR}/{f}" for f in ("index.html", "app.js", "model.js", "ort-runtime.js")} <= set(
            manifest.files
        )


def test_imdb_page_agrees_with_onnxruntime_and_the_server_on_200_real_reviews(repo, pages, server, data_dir):
    texts = [t for t, _ in _spread(list(read_imdb_raw(data_dir, "test")), 200)]
    page, _ = pages["imdb"]
    browser = page.evaluate("texts => modelyard.predictTexts(texts)", texts)
    manifest = repo.manifest("imdb")
    encoder = manifest.text_encoder(repo.path("imdb", repo.resolve("imdb")))
    y, manifest = python_reference(repo, "imdb", encoder.encode(texts))
    _agreement("imdb", browser, y, manifest, served(server, "imdb", texts, "BYTES", [len(texts)]))


def test_reuters_page_agrees_on_50_real_newswires(repo, pages, server, data_dir):
    reuters = load_reuters(data_dir)
    rank_to_word = {r: w for w, r in json.loads(reuters.vocab_file.read_text()).items()}
    texts = [" ".join(rank_to_word.get(i - 3, "?") for i in seq[1:]) for seq in _spread(list(reuters.x_test), 50)]
    page, _ = pages["reuters"]
    browser = page.evaluate("texts => modelyard.predictTexts(texts)", texts)
    encoder = repo.manifest("reuters").text_encoder(repo.path("reuters", repo.resolve("reuters")))
    y, manifest = python_reference(repo, "reuters", encoder.encode(texts))
    _agreement("reuters", browser, y, manifest, served(server, "reuters", texts, "BYTES", [len(texts)]))
    assert all(len(r["topics"]) == 5 for r in browser)


def test_boston_page_agrees_on_50_test_rows(repo, pages, server, data_dir):
    rows = load_boston(data_dir).x_test[:50].astype(np.float32)
    page, _ = pages["boston"]
    browser = page.evaluate("rows => modelyard.predictRows(rows)", rows.tolist())
    y, manifest = python_reference(repo, "boston", rows)
    answer = served(server, "boston", rows.ravel().tolist(), "FP32", list(rows.shape))
    _agreement("boston", browser, y, manifest, answer)


def test_js_tokenizer_gives_text_encoder_ids_on_1000_real_reviews(repo, pages, data_dir):
    texts = [t for t, _ in _spread(list(read_imdb_raw(data_dir, "train")), 1000)]
    texts += ["", "  Tabs\tand\nnewlines --- İstanbul ÇA ΟΔΟΣ straße", "__proto__ constructor hasOwnProperty"]
    page, _ = pages["imdb"]
    js_ids = page.evaluate("texts => texts.map(t => modelyard.tokenizer.ids(t))", texts)
    encoder: TextEncoder = repo.manifest("imdb").text_encoder(repo.path("imdb", repo.resolve("imdb")))
    mismatches = [i for i, (text, ids) in enumerate(zip(texts, js_ids)) if encoder.ids(text) != ids]
    assert not mismatches, f"{len(mismatches)} texts tokenized differently, e.g. {texts[mismatches[0]][:200]!r}"
    # words that are special in JS objects are plain words here
    odd = {"__proto__": 1, "constructor": 2, "toString": 3, "hasownproperty": 4}
    js = page.evaluate(
        "([pre, vocab, text]) => ModelyardTokenizer.createTokenizer(pre, vocab).ids(text)",
        [
            {**page.evaluate("modelyard.bundle.preprocessing"), "num_words": 10},
            list(odd.items()),
            "__proto__ Constructor tostring hasOwnProperty valueOf",
        ],
    )
    assert js == TextEncoder(odd, num_words=10).ids("__proto__ Constructor tostring hasOwnProperty valueOf")


def test_page_form_answers_what_is_typed(pages):
    page, first_ms = pages["imdb"]
    assert 0 < first_ms < 60_000
    page.fill("#text", "A dull, boring and awful waste of time. The worst film of the year.")
    page.click("#predict")
    expect(page.locator("#output .answer")).to_have_text("negative")
    page, _ = pages["boston"]
    before = page.text_content("#output .answer")
    page.fill("#f-RM", "8.5")
    page.click("#predict")
    expect(page.locator("#output .answer")).not_to_have_text(before)


def test_page_policy_lets_nothing_out(pages):
    """The page's Content-Security-Policy refuses any connection, even to 127.0.0.1, whatever script asks."""
    page, _ = pages["imdb"]
    outcome = page.evaluate("() => fetch('http://127.0.0.1:9/').then(() => 'sent', e => 'refused')")
    assert outcome == "refused"


def test_bundle_runs_from_a_static_host_on_127_0_0_1(repo, chromium):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(_bundle_dir(repo, "boston")))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with local_page(chromium) as page:
            assert open_bundle(page, f"http://127.0.0.1:{server.server_port}/index.html") > 0
            assert page.text_content("#output .answer").startswith("$")
    finally:
        server.shutdown()
