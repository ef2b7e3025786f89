"""Checks that a running server answers as the exported models do, shared by the tests that serve from another
install or engine (tests/packaging/test_serve_extra.py, tests/serving/test_ray_serve.py): a KServe V2 request to
Boston (REST, or gRPC) and a TF Serving ``:predict`` of two IMDB reviews, compared with onnxruntime on the same ONNX
files.

Usage (the test directory is on ``sys.path``, as for ``conftest``): ``from served_answers import ...``."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import httpx
import numpy as np
import onnxruntime as ort

from modelyard.encoding import TextEncoder
from serving.protocols.proto import grpc_predict_v2_pb2 as pb
from serving.protocols.proto import grpc_predict_v2_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("imdb", "reuters", "boston")
BOSTON_ROW = [0.1, 0.0, 8.1, 0, 0.5, 6.2, 60.0, 4.0, 5, 300, 18.0, 390.0, 10.0]
REVIEWS = ["A wonderful film, the acting was superb and the story moving.", "Dull, boring and far too long."]


def model_repo(fixture_root: Path, tmp: Path) -> Path:
    """The checkout's real exported models (symlinked, never modified) when it has all three, else the tiny
    export-contract fixtures."""
    real = ROOT / "models"
    if all(any((real / m).glob("*/onnx/fp32.onnx")) for m in MODELS):
        repo = tmp / "models"
        repo.mkdir()
        for m in MODELS:
            (repo / m).symlink_to(real / m, target_is_directory=True)
        return repo
    return fixture_root / "repo"


def _latest(repo: Path, name: str) -> Path:
    return max((p for p in (repo / name).iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def _onnx_answer(vdir: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(vdir / "onnx" / "fp32.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def check_v2_and_tfs(client: httpx.Client, repo: Path) -> None:
    """A V2 Boston request and a TF Serving IMDB ``:predict`` answer as onnxruntime does on the served ONNX."""
    v2 = client.post(
        "/v2/models/boston/infer",
        json={"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": BOSTON_ROW}]},
    )
    assert v2.status_code == 200, v2.text
    price = next(o for o in v2.json()["outputs"] if o["name"] == "price")
    expected = _onnx_answer(_latest(repo, "boston"), np.array([BOSTON_ROW], np.float32))
    np.testing.assert_allclose(np.array(price["data"], np.float32).reshape(expected.shape), expected, rtol=1e-5)

    tfs = client.post("/v1/models/imdb:predict", json={"instances": REVIEWS})
    assert tfs.status_code == 200, tfs.text
    vdir = _latest(repo, "imdb")
    pre = json.loads((vdir / "manifest.json").read_text())["preprocessing"]
    encoder = TextEncoder.from_vocab_file(
        vdir / pre["vocab_file"],
        pre["num_words"],
        index_from=pre["index_from"],
        start_char=pre["start_char"],
        oov_char=pre["oov_char"],
    )
    expected = _onnx_answer(vdir, encoder.encode(REVIEWS))
    np.testing.assert_allclose(np.array(tfs.json()["predictions"], np.float32), expected, rtol=1e-5, atol=1e-6)


def check_v2_grpc(target: str, repo: Path) -> None:
    """Over KServe V2 gRPC: ready, Boston answered as onnxruntime answers, an unknown model NOT_FOUND, bytes that
    are no request INVALID_ARGUMENT."""
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready
        tensor = pb.ModelInferRequest.InferInputTensor(
            name="features", datatype="FP32", shape=[1, 13], contents=pb.InferTensorContents(fp32_contents=BOSTON_ROW)
        )
        answer = stub.ModelInfer(pb.ModelInferRequest(model_name="boston", inputs=[tensor]), timeout=30)
        price = next(o for o in answer.outputs if o.name == "price")
        expected = _onnx_answer(_latest(repo, "boston"), np.array([BOSTON_ROW], np.float32))
        np.testing.assert_allclose(
            np.array(price.contents.fp32_contents, np.float32).reshape(expected.shape), expected, rtol=1e-5
        )
        for request, code in (
            (pb.ModelInferRequest(model_name="nope").SerializeToString(), grpc.StatusCode.NOT_FOUND),
            (b"\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT),
        ):
            call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
            try:
                call(request, timeout=30)
            except grpc.RpcError as e:
                assert e.code() == code, (e.code(), e.details())
            else:
                raise AssertionError(f"{request[:20]!r} answered, not {code}")
