"""The prediction log (serving/predlog) and the feedback route (serving/feedback.py), in process on SQLite."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time

import numpy as np
import pytest

from tests.serving.serving_helpers import in_process

REVIEW = "a wonderful film, the acting was superb"


def rows(db, sql="SELECT * FROM predictions ORDER BY id", args=()):
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute(sql, args)]


def wait_rows(db, n, sql="SELECT * FROM predictions ORDER BY id", timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        got = rows(db, sql)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


@pytest.fixture(scope="module")
def logged(fixture_root, tmp_path_factory):
    """All three tiny models with the log on; imdb split 50/50 between its ONNX and TFLite variants and
    mirrored to nothing, boston mirrored to TFLite."""
    d = tmp_path_factory.mktemp("predlog")
    repo = d / "models"
    shutil.copytree(fixture_root / "repo", repo)
    cfg = d / "serving.json"
    cfg.write_text(
        json.dumps(
            {
                "models": {
                    "imdb": {
                        "traffic": [{"variant": "onnx_fp32", "weight": 1}, {"variant": "tflite_fp32", "weight": 1}]
                    },
                    "boston": {"shadow": {"variant": "tflite_fp32"}},
                    "reuters": {"log_sample_rate": 0.0},
                }
            }
        )
    )
    db = d / "log.db"
    with in_process(repo, config=cfg, prediction_log=f"sqlite:///{db}") as client:
        yield client, db


def test_a_row_per_instance_with_input_output_and_arm(logged):
    client, db = logged
    r = client.post(
        "/v1/models/imdb:predict",
        json={"instances": [REVIEW, "dull and far too long"]},
        headers={"X-Request-Id": "rid-text"},
    )
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "rid-text"
    got = wait_rows(db, 2, "SELECT * FROM predictions WHERE request_id = 'rid-text' ORDER BY instance")
    assert [g["instance"] for g in got] == [0, 1]
    assert json.loads(got[0]["input"]) == {"text": REVIEW}
    assert json.loads(got[1]["input"]) == {"text": "dull and far too long"}
    p = np.array(r.json()["predictions"])[:, 0]
    for g, prob in zip(got, p):
        out = json.loads(g["output"])
        assert out["scores"] == pytest.approx([1 - prob, prob], abs=1e-6)
        assert g["label"] == ("positive" if prob >= 0.5 else "negative") == out["label"]
        assert g["confidence"] == pytest.approx(max(prob, 1 - prob), abs=1e-6)
        assert g["model"] == "imdb" and g["version"] == 1 and g["arm"] == "split"
        assert g["variant"] == r.headers["x-model-variant"]
        assert g["latency_ms"] > 0


def test_v2_id_is_the_logged_id_and_features_are_named(logged):
    client, db = logged
    features = {
        "CRIM": 0.1,
        "ZN": 0.0,
        "INDUS": 7.0,
        "CHAS": 0.0,
        "NOX": 0.5,
        "RM": 6.2,
        "AGE": 60.0,
        "DIS": 4.0,
        "RAD": 4.0,
        "TAX": 300.0,
        "PTRATIO": 18.0,
        "B": 390.0,
        "LSTAT": 10.0,
    }
    r = client.post("/v1/models/boston:predict", json={"instances": [features]})
    rid = r.headers["x-request-id"]
    got = wait_rows(db, 2, f"SELECT * FROM predictions WHERE request_id = '{rid}' ORDER BY arm")
    primary, shadow = got[0], got[1]
    assert (primary["arm"], shadow["arm"]) == ("latest", "shadow")
    assert shadow["variant"] == "tflite_fp32" and shadow["input"] is None
    assert json.loads(primary["input"]) == {"features": pytest.approx(features)}
    assert primary["value"] == pytest.approx(r.json()["predictions"][0][0], rel=1e-6)
    assert shadow["value"] == pytest.approx(primary["value"], rel=1e-3)

    body = {"id": "client-chosen-id", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [REVIEW]}]}
    r = client.post("/v2/models/imdb/versions/1/infer", json=body)
    assert r.json()["id"] == "client-chosen-id"
    got = wait_rows(db, 1, "SELECT * FROM predictions WHERE request_id = 'client-chosen-id'")
    assert got[0]["arm"] == "version" and json.loads(got[0]["input"]) == {"text": REVIEW}

    r = client.post("/v1/models/imdb:predict", json={"instances": [{"ids": [1, 14, 22, 9]}]})
    got = wait_rows(db, 1, f"SELECT * FROM predictions WHERE request_id = '{r.headers['x-request-id']}'")
    assert json.loads(got[0]["input"]) == {"ids": [1, 14, 22, 9]}


def test_sample_rate_zero_keeps_nothing(logged):
    client, db = logged
    r = client.post("/v1/models/reuters:predict", json={"instances": ["oil prices rose"]})
    assert r.status_code == 200
    client.post("/v1/models/imdb:predict", json={"instances": [REVIEW]}, headers={"X-Request-Id": "after"})
    wait_rows(db, 1, "SELECT * FROM predictions WHERE request_id = 'after'")
    assert rows(db, "SELECT * FROM predictions WHERE model = 'reuters'") == []


def test_feedback_stores_replaces_and_reports_unknown_ids(logged):
    client, db = logged
    client.post("/v1/models/imdb:predict", json={"instances": [REVIEW]}, headers={"X-Request-Id": "fb-1"})
    client.post("/v1/models/imdb:predict", json={"instances": [REVIEW, REVIEW]}, headers={"X-Request-Id": "fb-2"})
    wait_rows(db, 3, "SELECT * FROM predictions WHERE request_id LIKE 'fb-%'")
    r = client.post("/v2/models/imdb/feedback", json={"request_id": "fb-1", "label": "positive"})
    assert r.status_code == 200 and r.json()["status"] == "stored"
    r = client.post("/v2/models/imdb/feedback", json={"request_id": "fb-1", "label": 0})
    assert r.status_code == 200 and r.json()["status"] == "replaced" and "last one counts" in r.json()["note"]
    assert rows(db, "SELECT label, source FROM ground_truth WHERE request_id = 'fb-1'") == [
        {"label": "negative", "source": "feedback"}
    ]

    r = client.post(
        "/v2/models/imdb/feedback",
        json={
            "items": [
                {"request_id": "fb-2", "instance": 1, "label": "positive"},
                {"request_id": "fb-2", "label": "positive"},
                {"request_id": "nope", "label": "positive"},
                {"request_id": "fb-1", "label": "great"},
                {"request_id": "fb-1", "value": 3.0},
            ]
        },
    )
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["status"] for i in items] == ["stored", "invalid", "unknown_request_id", "invalid", "invalid"]
    assert "say which one with 'instance'" in items[1]["error"]
    assert "unknown label 'great'" in items[3]["error"]
    assert "send 'label', not 'value'" in items[4]["error"]
    assert r.json()["counts"] == {"stored": 1, "replaced": 0, "unknown_request_id": 1, "invalid": 3}

    r = client.post("/v2/models/imdb/feedback", json={"request_id": "nope", "label": "positive"})
    assert r.status_code == 404 and "nope" in r.json()["error"]
    for bad in ({"items": []}, [1, 2], {"request_id": "fb-1"}):
        r = client.post("/v2/models/imdb/feedback", json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]
    r = client.post("/v2/models/nomodel/feedback", json={"request_id": "fb-1", "label": 1})
    assert r.status_code == 404


def test_a_full_queue_drops_and_counts_without_failing_requests(fixture_root, tmp_path):
    """A database that stalls (another connection holds its write lock): the writer thread waits on it, the
    queue (room for 2) fills, further rows are dropped and counted, and every request is answered at once."""
    db = tmp_path / "log.db"
    with in_process(fixture_root / "repo", prediction_log=f"sqlite:///{db}", prediction_log_queue_size=2) as client:
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            t0 = time.monotonic()
            statuses = [
                client.post(
                    "/v1/models/imdb:predict", json={"instances": [REVIEW]}, headers={"X-Request-Id": f"q{i}"}
                ).status_code
                for i in range(8)
            ]
            elapsed = time.monotonic() - t0
            dropped = _metric(client, 'modelyard_prediction_log_rows_total{model="imdb",outcome="dropped"}')
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert statuses == [200] * 8
        assert elapsed < 5, "requests waited on the stalled database"
        assert dropped >= 5  # at most one taken by the writer and two queued
        written = wait_rows(db, 8 - int(dropped), "SELECT * FROM predictions WHERE request_id LIKE 'q%'")
        assert len(written) == 8 - dropped
        assert _metric(client, 'modelyard_prediction_log_rows_total{model="imdb",outcome="written"}') == len(written)


def test_a_batch_past_one_statement_is_written_whole_and_in_order(logged):
    """The writer inserts fixed-size multi-row statements and the remainder with ``executemany``: 2.5 statements'
    worth of rows from one request arrive all, each with its own instance and input."""
    from serving.predlog.writer import INSERT_ROWS

    client, db = logged
    n = 2 * INSERT_ROWS + INSERT_ROWS // 2
    texts = [f"review number {i} was {'great' if i % 2 else 'dull'}" for i in range(n)]
    r = client.post("/v1/models/imdb:predict", json={"instances": texts}, headers={"X-Request-Id": "many"})
    assert r.status_code == 200
    got = wait_rows(db, n, "SELECT * FROM predictions WHERE request_id = 'many' ORDER BY instance")
    assert [g["instance"] for g in got] == list(range(n))
    assert [json.loads(g["input"])["text"] for g in got] == texts
    p = np.array(r.json()["predictions"])[:, 0]
    assert [json.loads(g["output"])["scores"][1] for g in got] == pytest.approx(p.tolist(), abs=1e-6)


def test_a_failed_insert_is_counted_and_the_writer_reconnects(fixture_root, tmp_path):
    """The predictions table gone: the batch fails (counted, the request answered), the writer drops its
    connection; the table back: the next batch is written."""
    from serving.predlog import schema

    db = tmp_path / "log.db"
    with in_process(fixture_root / "repo", prediction_log=f"sqlite:///{db}") as client:

        def predict(rid):
            return client.post(
                "/v1/models/imdb:predict", json={"instances": [REVIEW]}, headers={"X-Request-Id": rid}
            ).status_code

        assert predict("before") == 200
        assert len(wait_rows(db, 1)) == 1
        with sqlite3.connect(db) as c:
            c.execute("DROP TABLE predictions")
        assert predict("lost") == 200
        series = 'modelyard_prediction_log_rows_total{model="imdb",outcome="failed"}'
        deadline = time.monotonic() + 10
        while _metric(client, series) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _metric(client, series) == 1
        engine = schema.connect(f"sqlite:///{db}")
        schema.predictions.create(engine)
        engine.dispose()
        assert predict("after") == 200
        assert [r["request_id"] for r in wait_rows(db, 1)] == ["after"]


def test_server_made_request_ids_grow_with_time():
    """Ids the server makes start with the time, so that the log's request-id index grows at its end."""
    from serving.logs import new_request_id

    ids = []
    for _ in range(5):
        ids.append(new_request_id())
        time.sleep(0.002)
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_server_made_request_ids_differ_between_forked_workers():
    """Workers are forked from one supervisor: each must draw its own random part, or two workers answering in the
    same millisecond could give two requests one id."""
    import multiprocessing

    from serving.logs import new_request_id

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        ids = pool.starmap(_ids_in_a_worker, [(20,), (20,)])
    ids.append([new_request_id() for _ in range(20)])
    randoms = [i[12:] for batch in ids for i in batch]
    assert len(set(randoms)) == 60


def _ids_in_a_worker(n: int) -> list[str]:
    from serving.logs import new_request_id

    return [new_request_id() for _ in range(n)]


def _metric(client, series: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def test_feedback_without_the_log_is_a_clear_404(rest_client):
    r = rest_client.post("/v2/models/imdb/feedback", json={"request_id": "x", "label": 1})
    assert r.status_code == 404 and "--prediction-log" in r.json()["error"]


def test_schema_is_versioned_and_migrated_once(tmp_path):
    from serving.predlog import schema

    url = f"sqlite:///{tmp_path / 'log.db'}"
    schema.connect(url).dispose()
    schema.connect(url).dispose()
    assert rows(tmp_path / "log.db", "SELECT version FROM schema_version") == [{"version": schema.SCHEMA_VERSION}]
    with sqlite3.connect(tmp_path / "log.db") as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://h/db", "unsupported database 'mysql'"),
        ("sqlite://", "needs a file"),
        ("not a url", "not a database URL"),
    ],
)
def test_bad_urls_are_named(url, message):
    from modelyard.errors import ModelyardError
    from serving.predlog import schema

    with pytest.raises(ModelyardError, match=message):
        schema.connect(url)


def test_retention_deletes_old_rows_and_their_truth(tmp_path):
    from prometheus_client import CollectorRegistry
    from sqlalchemy import insert

    from serving.predlog import schema
    from serving.predlog.writer import DAY_S, PredictionLog

    engine = schema.connect(f"sqlite:///{tmp_path / 'log.db'}")
    now = time.time()
    with engine.begin() as c:
        c.execute(
            insert(schema.predictions),
            [
                {
                    "request_id": rid,
                    "instance": 0,
                    "ts": ts,
                    "model": "imdb",
                    "version": 1,
                    "variant": "v",
                    "arm": "latest",
                    "output": "{}",
                    "latency_ms": 1.0,
                }
                for rid, ts in (("old", now - 3 * DAY_S), ("new", now))
            ],
        )
        c.execute(
            insert(schema.ground_truth),
            [
                {
                    "model": "imdb",
                    "request_id": rid,
                    "instance": 0,
                    "label": "positive",
                    "source": "feedback",
                    "ts": now,
                }
                for rid in ("old", "new")
            ],
        )
    log = PredictionLog(engine, CollectorRegistry(), None, retention_days=2)
    assert log.apply_retention() == 1
    db = tmp_path / "log.db"
    assert [r["request_id"] for r in rows(db)] == ["new"]
    assert [r["request_id"] for r in rows(db, "SELECT * FROM ground_truth")] == ["new"]


def test_live_accuracy_gauges_follow_the_ground_truth(logged):
    client, db = logged
    dp = client._client._transport.app.dp
    for i in range(4):
        client.post(
            "/v1/models/imdb/versions/1:predict", json={"instances": [REVIEW]}, headers={"X-Request-Id": f"live-{i}"}
        )
    got = wait_rows(
        db, 4, "SELECT request_id, label FROM predictions WHERE request_id LIKE 'live-%' ORDER BY request_id"
    )
    # three right, one wrong
    items = [
        {
            "request_id": g["request_id"],
            "label": g["label"] if i < 3 else ("negative" if g["label"] == "positive" else "positive"),
        }
        for i, g in enumerate(got)
    ]
    assert client.post("/v2/models/imdb/feedback", json={"items": items}).json()["counts"]["stored"] == 4
    dp.predlog.live.refresh(dp.predlog.engine)
    labelled = rows(
        db,
        "SELECT p.variant, p.label = g.label AS ok FROM predictions p JOIN ground_truth g "
        "ON g.request_id = p.request_id AND g.instance = p.instance AND g.model = p.model "
        "WHERE p.model = 'imdb' AND p.arm != 'shadow'",
    )
    for variant in {r["variant"] for r in labelled}:
        mine = [r["ok"] for r in labelled if r["variant"] == variant]
        series = f'{{model="imdb",role="primary",variant="{variant}",version="1"}}'
        assert _metric(client, "modelyard_live_labelled_predictions" + series) == len(mine)
        assert _metric(client, "modelyard_live_accuracy" + series) == pytest.approx(sum(mine) / len(mine))


def test_a_real_server_logs_grpc_and_rest_and_returns_the_request_id(fixture_root, repo_copy, start_server, tmp_path):
    """``modelyard serve --prediction-log``: a gRPC ModelInfer and a REST predict are logged under the id each
    answer carries (gRPC: trailing metadata and the V2 id; REST: the X-Request-Id header)."""
    import grpc

    from serving.protocols.proto import grpc_predict_v2_pb2 as pb
    from serving.protocols.proto import grpc_predict_v2_pb2_grpc as pb_grpc

    db = tmp_path / "served.db"
    server = start_server(repo_copy, "--prediction-log", f"sqlite:///{db}")
    rid = server.client.post("/v1/models/imdb:predict", json={"instances": [REVIEW]}).headers["x-request-id"]
    with grpc.insecure_channel(server.grpc_url) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        req = pb.ModelInferRequest(
            model_name="imdb",
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="text", datatype="BYTES", shape=[1], contents=pb.InferTensorContents(bytes_contents=[b"dull"])
                )
            ],
        )
        resp, call = stub.ModelInfer.with_call(req, metadata=[("x-request-id", "grpc-1")])
    assert resp.id == "grpc-1" and ("x-request-id", "grpc-1") in call.trailing_metadata()
    got = wait_rows(
        db, 2, f"SELECT request_id, input FROM predictions WHERE request_id IN ('{rid}', 'grpc-1') ORDER BY request_id"
    )
    assert {g["request_id"]: json.loads(g["input"]) for g in got} == {rid: {"text": REVIEW}, "grpc-1": {"text": "dull"}}
    assert server.stop() == 0


def test_live_mae_gauge_for_boston_primary_and_shadow(logged):
    client, db = logged
    dp = client._client._transport.app.dp
    row = {
        f: 1.0
        for f in ("CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT")
    }
    client.post("/v1/models/boston:predict", json={"instances": [row]}, headers={"X-Request-Id": "mae-1"})
    got = wait_rows(db, 2, "SELECT arm, value FROM predictions WHERE request_id = 'mae-1' ORDER BY arm")
    assert client.post("/v2/models/boston/feedback", json={"request_id": "mae-1", "value": 20.0}).status_code == 200
    dp.predlog.live.refresh(dp.predlog.engine)
    for g in got:
        role, variant = ("shadow", "tflite_fp32") if g["arm"] == "shadow" else ("primary", "onnx_fp32")
        series = f'{{model="boston",role="{role}",variant="{variant}",version="1"}}'
        assert _metric(client, "modelyard_live_mae" + series) == pytest.approx(abs(g["value"] - 20.0), rel=1e-6)


def test_the_feedback_body_is_documented(rest_client):
    op = rest_client.get("/openapi.json").json()["paths"]["/v2/models/{name}/feedback"]["post"]
    body = op["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == {"one", "batch"} and len(body["schema"]["oneOf"]) == 2
    assert {"400", "404"} <= set(op["responses"])
