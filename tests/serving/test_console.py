"""The web console at /ui/ and the API docs: in process for what each route answers and guards, and in one headless
Chromium against a real ``modelyard serve`` (tiny models, a real stakeholder report of Boston on its real test split)
for what a person sees: the models listed, the try-it forms answering as the API does, live figures, the report,
and /docs and /redoc rendering with no request off 127.0.0.1."""

from __future__ import annotations

import shutil
import sqlite3
import time

import pytest
from browser import headless_chromium, local_page
from serving_helpers import Server, in_process, reference

FEATURES = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT"]


# ------------------------------------------------------------------ in process
def test_console_api_lists_versions_variants_threshold_and_live_counts(fixture_root, tmp_path):
    cfg = tmp_path / "serving.yaml"
    cfg.write_text("models:\n  imdb:\n    threshold: 0.3\n")
    with in_process(fixture_root / "repo", config=cfg) as client:
        for _ in range(3):
            assert client.post("/v1/models/imdb:predict", json={"instances": ["a good movie"]}).status_code == 200
        models = {m["name"]: m for m in client.get("/ui/api/models").json()["models"]}
    assert sorted(models) == ["boston", "imdb", "reuters"]
    imdb = models["imdb"]
    assert imdb["threshold"] == 0.3 and models["reuters"]["threshold"] is None
    (v1,) = imdb["versions"]
    assert v1["state"] == "AVAILABLE" and v1["served_variants"] == ["onnx_fp32"] and v1["report"] is None
    assert {v["name"] for v in v1["variants"]} >= {"onnx_fp32"}
    assert imdb["live"]["requests"] == 3 and imdb["live"]["batches"] == 3 and imdb["live"]["batch_rows"] == 3
    assert imdb["live"]["latency_buckets"][-1] == ["+Inf", 3]
    assert models["boston"]["input"] == {
        "kind": "features",
        "tensor": "features",
        "feature_names": FEATURES,
        "example": models["boston"]["input"]["example"],
    }


def test_console_page_is_open_its_data_and_the_docs_need_the_key(fixture_root):
    with in_process(fixture_root / "repo", api_key="k") as client:
        for path in ("/ui/", "/ui/console.js", "/ui/console.css"):
            assert client.get(path).status_code == 200, path
        assert client.get("/ui").status_code == 308
        for path in (
            "/ui/api/models",
            "/ui/api/reports/boston/1/index.html",
            "/docs",
            "/redoc",
            "/static-offline-docs/swagger-ui-bundle.js",
        ):
            assert client.get(path).status_code == 401, path
        assert client.get("/ui/api/models", headers={"X-API-Key": "k"}).status_code == 200
    with in_process(fixture_root / "repo", api_key="k", public_metadata=True) as client:
        for path in ("/ui/api/models", "/docs", "/redoc", "/static-offline-docs/redoc.standalone.js"):
            assert client.get(path).status_code == 200, path


def test_report_files_are_read_only_and_named_exactly(fixture_root, tmp_path):
    repo = tmp_path / "models"
    shutil.copytree(fixture_root / "repo", repo)
    with in_process(repo) as client:
        r = client.get("/ui/api/reports/boston/1/index.html")
        assert r.status_code == 404 and "modelyard report boston --version 1" in r.json()["error"]
        for path, status in (
            ("/ui/api/reports/boston/x/index.html", 400),
            ("/ui/api/reports/nope/1/index.html", 404),
            ("/ui/api/reports/boston/1/..%2Fmanifest.json", 404),
            ("/ui/api/reports/boston/1/manifest.json", 404),
            ("/ui/nothing.js", 404),
        ):
            r = client.get(path)
            assert r.status_code == status and "error" in r.json(), path
        assert client.post("/ui/api/models").status_code == 405


# ------------------------------------------------------------------ in Chromium
@pytest.fixture(scope="module")
def console_server(fixture_root, data_dir, tmp_path_factory):
    """A server of the tiny models, Boston's version 1 with its stakeholder report, IMDB's threshold at 0.3."""
    from report.cli import report

    d = tmp_path_factory.mktemp("console")
    repo = d / "models"
    shutil.copytree(fixture_root / "repo", repo)
    report("boston", repo=repo, data_dir=data_dir, config=None, threshold=None, version=None, variant="onnx_fp32")
    cfg = d / "serving.yaml"
    cfg.write_text("models:\n  imdb:\n    threshold: 0.3\n")
    s = Server(repo, d / "server.log", ("--config", str(cfg)))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def chromium():
    with headless_chromium() as browser:
        yield browser


def _v2(server, name, inputs, **parameters) -> dict:
    r = server.client.post(f"/v2/models/{name}/infer", json={"inputs": inputs, "parameters": parameters})
    assert r.status_code == 200, r.text
    return {o["name"]: o["data"] for o in r.json()["outputs"]}


def test_console_lists_the_models_and_its_forms_answer_as_the_api(console_server, chromium, fixture_root):
    text = str(reference(fixture_root, "imdb")["texts"][0])
    with local_page(chromium, viewport={"width": 1280, "height": 1400}) as page:
        page.goto(console_server.url + "/ui/")
        for name in ("boston", "imdb", "reuters"):
            page.wait_for_selector(f"#model-{name} .state-AVAILABLE")
        assert "decision threshold 0.3" in page.inner_text("#model-imdb .facts")
        assert "onnx_fp32" in page.inner_text("#model-reuters table")

        page.fill("form[data-model=imdb] textarea", text)
        page.click("form[data-model=imdb] button[type=submit]")
        page.wait_for_selector("form[data-model=imdb] .answer .label")
        served = _v2(console_server, "imdb", [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}])
        assert page.inner_text("form[data-model=imdb] .answer .label") == served["label"][0]
        assert f"probability positive {served['probability'][0]:.4f}" in page.inner_text(
            "form[data-model=imdb] .answer"
        )

        page.click("form[data-model=reuters] button[type=submit]")
        page.wait_for_selector("form[data-model=reuters] .answer .label")
        news = page.input_value("form[data-model=reuters] textarea")
        served = _v2(
            console_server, "reuters", [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [news]}], top_k=5
        )
        assert page.locator("form[data-model=reuters] .topics .label").all_inner_texts() == served["top_k_labels"]

        page.fill("form[data-model=boston] input[name=RM]", "7.5")
        page.click("form[data-model=boston] button[type=submit]")
        page.wait_for_selector("form[data-model=boston] .answer .label")
        row = [float(page.input_value(f"form[data-model=boston] input[name={f}]")) for f in FEATURES]
        price = _v2(
            console_server, "boston", [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": row}]
        )["price"][0]
        assert page.inner_text("form[data-model=boston] .answer .label") == f"${round(price * 1000):,}"

        for _ in range(20):  # traffic the next poll turns into a rate, a p99 and a batch size
            _v2(console_server, "boston", [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": row}])
        page.wait_for_function(
            "!document.querySelector('#model-boston [data-live=rate] b').textContent"
            ".startsWith('0.0') && !document.querySelector('#model-boston [data-live=rate] b')"
            ".textContent.startsWith('–')",
            timeout=10000,
        )
        assert page.inner_text("#model-boston [data-live=p99] b").endswith(" ms")
        assert page.inner_text("#model-boston [data-live=batch] b") == "1.0 rows"

        page.click("#model-boston button.report")
        frame = page.frame_locator("#report-frame")
        frame.locator("text=Of every 1,000 houses").wait_for()
        widths = frame.locator("img").evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth)")
        assert len(widths) >= 3 and all(w > 0 for w in widths)
        assert page.locator("#model-imdb td", has_text="none (modelyard report imdb)").count() == 1


def test_docs_and_redoc_render_from_local_assets(console_server, chromium):
    with local_page(chromium) as page:
        page.goto(console_server.url + "/docs")
        page.locator(".opblock-summary-path", has_text="/v2/models/{name}/infer").first.wait_for()
    with local_page(chromium) as page:
        page.goto(console_server.url + "/redoc")
        page.locator("h2", has_text="Predict: the output tensor's rows").first.wait_for()
        page.wait_for_selector("img[alt='redocly logo']")


def _logged(db) -> int:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT count(*) FROM predictions WHERE request_id LIKE 'c-%'").fetchone()[0]


def test_console_api_shows_live_accuracy_from_the_prediction_log(fixture_root, tmp_path):
    db = tmp_path / "log.db"
    with in_process(fixture_root / "repo", prediction_log=f"sqlite:///{db}") as client:
        labels = []
        for i, text in enumerate(["a wonderful film", "dull and far too long", "great acting"]):
            r = client.post(
                "/v2/models/imdb/infer",
                json={"id": f"c-{i}", "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}]},
            )
            labels.append(next(o["data"][0] for o in r.json()["outputs"] if o["name"] == "label"))
        deadline = time.monotonic() + 10
        while _logged(db) < 3:  # the log's writer thread has written them
            assert time.monotonic() < deadline, "the prediction log did not write the requests"
            time.sleep(0.05)
        dp = client._client._transport.app.dp
        wrong = "negative" if labels[2] == "positive" else "positive"
        items = [{"request_id": f"c-{i}", "label": label} for i, label in enumerate(labels[:2] + [wrong])]
        assert client.post("/v2/models/imdb/feedback", json={"items": items}).status_code == 200
        dp.predlog.live.refresh(dp.predlog.engine)
        imdb = next(m for m in client.get("/ui/api/models").json()["models"] if m["name"] == "imdb")
    assert imdb["live"]["quality"] == [
        {"version": 1, "variant": "onnx_fp32", "accuracy": pytest.approx(2 / 3), "labelled": 3.0}
    ]
