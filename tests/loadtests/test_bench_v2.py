"""`modelyard bench` over KServe V2: the request bodies of each protocol, the contenders and their ports, the
gRPC load generator (closed loop and fixed rate, against a small in-process ``grpc.aio`` server that counts what
it receives), the table's protocol-aware rows, and MLServer's runtime (skipped, with the reason, where the peers'
environment has no MLServer: ``make bench-peers``)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import grpc
import numpy as np
import pytest

from loadtests.bench import bodies, grpc_load
from loadtests.bench.load import GeneratorError, Point, RatePoint
from loadtests.bench.report import bodies_line, markdown, summary
from loadtests.bench.run import Measurement
from loadtests.bench.servers import KEYS, PEERS, Setup, contenders, installed, peers_python
from loadtests.process import ServerProcess, free_port
from serving.protocols.proto import grpc_predict_v2_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
IDS = [[1, 14, 22, 9], [1, 7], [1, 3, 3, 48, 2, 11]]


# ------------------------------------------------------------------ bodies


def test_v2_bodies_carry_the_tfs_ids_padded_to_one_shape(tmp_path):
    paths = bodies.write_all(tmp_path, "imdb", IDS, text=True)
    tfs = [json.loads(l) for l in paths["tfs"].read_text().splitlines()]
    assert tfs == [{"instances": [{"ids": i}]} for i in IDS]
    v2 = [json.loads(l)["inputs"] for l in paths["v2-rest"].read_text().splitlines()]
    assert [t[0]["shape"] for t in v2] == [[1, 6]] * 3 and {t[0]["datatype"] for t in v2} == {"INT64"}
    assert [t[0]["data"] for t in v2] == [i + [0] * (6 - len(i)) for i in IDS] and v2[0][0]["name"] == "ids"
    msgs = [pb.ModelInferRequest.FromString(r) for r in bodies.read_records(paths["v2-grpc"])]
    assert len(msgs) == 3 and {m.model_name for m in msgs} == {"imdb"}
    for m, ids in zip(msgs, IDS):
        (t,) = m.inputs
        assert (t.name, t.datatype, list(t.shape)) == ("ids", "INT64", [1, 6]) and not t.HasField("contents")
        np.testing.assert_array_equal(np.frombuffer(m.raw_input_contents[0], "<i8"), ids + [0] * (6 - len(ids)))
    sizes = bodies.sizes(paths)
    assert sizes["v2-grpc"] == round(sum(len(r) for r in bodies.read_records(paths["v2-grpc"])) / 3)
    assert "padded with 0 to 6" in bodies_line(sizes, ["tfs", "v2-rest", "v2-grpc"], paths)


def test_tabular_bodies_are_one_fp32_row(tmp_path):
    rows = [[0.5 + i for i in range(13)], [float(i) for i in range(13)]]
    paths = bodies.write_all(tmp_path, "boston", rows, text=False, input_name="features")
    assert json.loads(paths["tfs"].read_text().splitlines()[1]) == {"instances": [rows[1]]}
    (t,) = json.loads(paths["v2-rest"].read_text().splitlines()[0])["inputs"]
    assert (t["name"], t["datatype"], t["shape"], t["data"]) == ("features", "FP32", [1, 13], rows[0])
    m = pb.ModelInferRequest.FromString(bodies.read_records(paths["v2-grpc"])[1])
    assert (m.inputs[0].datatype, list(m.inputs[0].shape)) == ("FP32", [1, 13])
    np.testing.assert_array_equal(np.frombuffer(m.raw_input_contents[0], "<f4"), np.float32(rows[1]))
    assert "padded" not in bodies_line(bodies.sizes(paths), ["tfs", "v2-rest", "v2-grpc"], paths)


def test_records_round_trip_and_truncation_is_an_error(tmp_path):
    recs = [b"a", b"", b"\x00" * 70000]
    path = bodies.write_records(tmp_path / "r.bin", recs)
    assert bodies.read_records(path) == recs
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        bodies.read_records(path)
    with pytest.raises(ValueError, match="longer than 2"):
        bodies.pad([[1, 2, 3]], 2)


# ------------------------------------------------------------------ contenders


def test_contenders_get_their_protocol_and_ports(tmp_path):
    s = Setup(
        model="imdb",
        repo=tmp_path,
        onnx=tmp_path / "m.onnx",
        route="/v1/models/imdb:predict",
        width=50,
        peers_python=Path("/peers/bin/python"),
    )
    cs = {c.key: c for c in contenders(s, 18000, list(KEYS), grpc_port=18001)}
    assert list(cs) == list(KEYS)
    for c in cs.values():
        if c.argv[1:4] == ["-m", "modelyard", "serve"]:  # every modelyard: gRPC off, or on the given port
            port = c.argv[c.argv.index("--grpc-port") + 1]
            assert port == ("18001" if c.protocol == "v2-grpc" else "0"), c.key
    assert {k: c.protocol for k, c in cs.items() if c.protocol != "tfs"} == {
        "modelyard-v2": "v2-rest",
        "modelyard-grpc": "v2-grpc",
        "mlserver": "v2-rest",
        "mlserver-grpc": "v2-grpc",
        "grpc-ceiling": "v2-grpc",
    }
    assert cs["mlserver"].route(s) == "/v2/models/imdb/infer" and cs["modelyard"].route(s) == s.route
    for key in ("mlserver", "mlserver-grpc"):
        c = cs[key]
        assert c.argv[0] == "/peers/bin/python" and c.role == "peer" and PEERS[key] == "mlserver"
        assert (c.env["MODELYARD_BENCH_PORT"], c.env["MODELYARD_BENCH_GRPC_PORT"]) == ("18000", "18001")
    assert "V2 gRPC" in cs["mlserver-grpc"].title and "adaptive batching" in cs["mlserver"].title
    assert "V2 REST" in cs["modelyard-v2"].title and cs["grpc-ceiling"].role == "grpc-ceiling"


def test_mlserver_settings_batch_and_keep_inference_in_process(tmp_path):
    from loadtests.bench.apps.mlserver_app import write_folder

    env = {"MODELYARD_BENCH_PORT": "18000", "MODELYARD_BENCH_GRPC_PORT": "18001", "MODELYARD_BENCH_MODEL": "imdb"}
    folder = write_folder(tmp_path, env)
    st = json.loads((folder / "settings.json").read_text())
    ms = json.loads((folder / "imdb" / "model-settings.json").read_text())
    assert (st["http_port"], st["grpc_port"], st["parallel_workers"], st["debug"]) == (18000, 18001, 0, False)
    assert st["metrics_port"] not in (18000, 18001)
    assert (ms["name"], ms["max_batch_size"], ms["max_batch_time"]) == ("imdb", 64, 0.002)
    assert ms["implementation"] == "loadtests.bench.apps.mlserver_runtime.OnnxRuntime"


# ------------------------------------------------------------------ the table


def _m(rps: float, p99: float = 5.0) -> Measurement:
    return Measurement(sweep=[Point(8, rps, 1.0, p99, 0, 1000)], fixed_rate=RatePoint(100, 100, 1.0, 2.0, 0, 3))


def test_grpc_rows_keep_the_http_ceiling_and_baseline_columns():
    results = {
        "grpc-ceiling": [_m(4000)],
        "mlserver-grpc": [_m(1000)],
        "fastapi": [_m(500)],
        "http-ceiling": [_m(8000)],
    }
    titles = {
        "grpc-ceiling": "gRPC ceiling: bare",
        "mlserver-grpc": "MLServer 1.7 (V2 gRPC, adaptive batching)",
        "fastapi": "FastAPI",
        "http-ceiling": "HTTP ceiling",
    }
    roles = {"grpc-ceiling": "grpc-ceiling", "mlserver-grpc": "peer", "fastapi": "baseline", "http-ceiling": "ceiling"}
    protocols = {"grpc-ceiling": "v2-grpc", "mlserver-grpc": "v2-grpc", "fastapi": "tfs", "http-ceiling": "tfs"}
    rows = {r["server"]: r for r in summary(results, titles, roles, 50, None, protocols)}
    assert rows["mlserver-grpc"]["protocol"] == "v2-grpc" and rows["fastapi"]["protocol"] == "tfs"
    assert rows["mlserver-grpc"]["x_baseline"] == 2.0 and rows["mlserver-grpc"]["of_http_ceiling"] == 0.12
    assert rows["http-ceiling"]["of_http_ceiling"] == 1.0 and rows["grpc-ceiling"]["of_http_ceiling"] == 0.5
    table = markdown(list(rows.values()), 50, 100)
    assert "| MLServer 1.7 (V2 gRPC, adaptive batching) | 1,000 | 2.00× | 12% |" in table


# ------------------------------------------------------------------ the gRPC load generator

ANSWER = pb.ModelInferResponse(model_name="m").SerializeToString()


class FakeV2:
    """ModelInfer as bytes: records each request, its arrival time and the most calls in flight at once; waits
    ``delay`` s per call; fails every ``fail_every``-th call with INVALID_ARGUMENT."""

    def __init__(self, delay: float = 0.0, fail_every: int = 0):
        self.delay, self.fail_every = delay, fail_every
        self.seen: list[bytes] = []
        self.arrivals: list[float] = []
        self.in_flight = self.most_in_flight = 0

    async def infer(self, request: bytes, context) -> bytes:
        self.seen.append(request)
        n = len(self.seen)
        self.arrivals.append(time.monotonic())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.fail_every and n % self.fail_every == 0:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "inputs[0]: bad tensor")
            return ANSWER
        finally:
            self.in_flight -= 1


def against(fake: FakeV2, client: Callable[[str], T]) -> T:
    """``client(target)`` run in a thread while ``fake`` answers on a grpc.aio server in this process's loop."""

    async def main() -> T:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "inference.GRPCInferenceService", {"ModelInfer": grpc.unary_unary_rpc_method_handler(fake.infer)}
                ),
            )
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            return await asyncio.to_thread(client, f"127.0.0.1:{port}")
        finally:
            await server.stop(0)

    return asyncio.run(main())


@pytest.fixture
def grpc_bodies(tmp_path) -> tuple[Path, list[bytes]]:
    path = bodies.write_all(tmp_path, "imdb", IDS, text=True)["v2-grpc"]
    return path, bodies.read_records(path)


def test_closed_loop_holds_its_calls_in_flight_and_counts_errors(grpc_bodies):
    path, records = grpc_bodies
    fake = FakeV2(delay=0.02, fail_every=5)
    cpus = os.sched_getaffinity(0)
    p = against(fake, lambda t: grpc_load.closed(t, path, 3, 1.0, cpus))  # 3 in flight, over up to 2 pinned workers
    assert p.connections == 3 and fake.most_in_flight == 3
    assert p.requests == len(fake.seen) and p.errors == len(fake.seen) // 5 > 0
    assert set(fake.seen) == set(records)  # every body sent, as they are, and nothing else
    assert 20 <= p.p50_ms <= p.p99_ms < 1000
    # 3 in flight, 20 ms each: at most 150 calls a second, and well over half of that
    assert 75 <= p.rps <= 160 and abs(p.rps - (p.requests - p.errors)) < 0.25 * p.rps


def test_fixed_rate_is_open_loop_and_drops_past_the_in_flight_limit(grpc_bodies):
    path, _ = grpc_bodies
    fake = FakeV2()
    r = against(fake, lambda t: grpc_load.fixed_rate(t, path, 100, 1.0))
    assert (r.dropped, r.failed, len(fake.seen)) == (0, 0, 100) and 90 <= r.achieved_rps <= 101
    assert fake.arrivals[-1] - fake.arrivals[0] >= 0.9  # spread over the second, not sent in a burst
    assert 0 < r.p50_ms <= r.p99_ms

    slow = FakeV2(delay=0.5)  # answers too slowly for 200 a second with at most 80 in flight
    r = against(slow, lambda t: grpc_load.fixed_rate(t, path, 200, 1.0))
    assert grpc_load.max_in_flight(200) == 80 and slow.most_in_flight == 80
    assert r.dropped > 0 and r.dropped + len(slow.seen) == 200 and r.p50_ms >= 500


def test_failures_name_the_grpc_status(grpc_bodies):
    path, _ = grpc_bodies

    def client(target: str) -> str | None:
        with pytest.raises(GeneratorError, match="no call succeeded .*INVALID_ARGUMENT: inputs\\[0\\]: bad tensor"):
            grpc_load.closed(target, path, 2, 0.5)
        return grpc_load.probe(target, path)

    assert against(FakeV2(fail_every=1), client) == "INVALID_ARGUMENT: inputs[0]: bad tensor"
    with pytest.raises(GeneratorError, match="not ready after 1s"):
        grpc_load.wait_ready(f"127.0.0.1:{free_port()}", path, 1.0)


def test_workers_one_per_load_generator_cpu():
    assert grpc_load.workers_for(None, 64) == [None]
    assert grpc_load.workers_for({5, 2, 3}, 2) == [{2}, {3}]
    assert grpc_load.workers_for({5, 2, 3}, 64) == [{2}, {3}, {5}]


# ------------------------------------------------------------------ MLServer (in the peers' environment)


def _mlserver_python() -> Path:
    py = peers_python(ROOT / ".bench-peers")
    if "mlserver" not in installed(py, {"mlserver"}):
        pytest.skip("MLServer is not installed in .bench-peers (make bench-peers)")
    return py


def test_mlserver_runtime_answers_v2_rest_and_grpc_batched(fixture_root, tmp_path):
    """Concurrent V2 requests of one shape are batched by MLServer and each gets its own row's answer: the same
    numbers as onnxruntime on the same multi-hot rows."""
    from loadtests.bench.engine import onnx_file
    from modelyard.encoding import multi_hot
    from modelyard.onnxrun import open_session

    py = _mlserver_python()
    onnx = onnx_file(fixture_root / "repo", "imdb")
    rng = np.random.default_rng(0)
    ids = [list(rng.integers(1, 50, size=n)) for n in rng.integers(1, 30, size=24)]
    padded = bodies.pad([[int(v) for v in i] for i in ids])
    sess = open_session(onnx, "cpu")
    want = sess.run(None, {sess.get_inputs()[0].name: multi_hot(ids, 50)})[0][:, 0]
    port, grpc_port = free_port(), free_port()
    env = {
        "PYTHONPATH": str(ROOT),
        "MODELYARD_BENCH_ONNX": str(onnx),
        "MODELYARD_BENCH_WIDTH": "50",
        "MODELYARD_BENCH_PORT": str(port),
        "MODELYARD_BENCH_GRPC_PORT": str(grpc_port),
        "MODELYARD_BENCH_MODEL": "imdb",
    }
    server = ServerProcess(
        [str(py), "-m", "loadtests.bench.apps.mlserver_app"], tmp_path / "mlserver.log", port=port, env=env
    )
    try:
        server.wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", 120)
        url = f"http://127.0.0.1:{port}/v2/models/imdb/infer"

        def rest(row: np.ndarray) -> float:
            req = urllib.request.Request(
                url, data=bodies.v2_rest_body(row).encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                (out,) = json.loads(r.read())["outputs"]
            assert out["shape"] == [1, 1]
            return out["data"][0]

        with ThreadPoolExecutor(16) as pool:  # at once, so MLServer merges them into batches
            got = list(pool.map(rest, padded))
        np.testing.assert_allclose(got, want, rtol=1e-5)

        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
            call = ch.unary_unary(grpc_load.METHOD)
            futures = [call.future(bodies.v2_grpc_message(row, "imdb"), timeout=30) for row in padded]
            answers = [pb.ModelInferResponse.FromString(f.result()) for f in futures]
        got = [np.frombuffer(a.raw_output_contents[0], "<f4")[0] for a in answers]
        np.testing.assert_allclose(got, want, rtol=1e-5)
        path = bodies.write_records(tmp_path / "b.grpc", [bodies.v2_grpc_message(r, "imdb") for r in padded])
        p = grpc_load.closed(f"127.0.0.1:{grpc_port}", path, 8, 1.0)
        assert p.errors == 0 and p.rps > 0
    finally:
        server.stop(timeout=15)
