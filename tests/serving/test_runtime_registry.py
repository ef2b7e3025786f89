"""A runtime added as one module and one registration line (serving/runtimes/__init__.py) serves a model on both
protocols, in process: its default variant is served, its platform is what V2 metadata says."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap

import grpc
import numpy as np
import pytest
from serving_helpers import in_process, reference

from loadtests.process import free_port
from modelyard.errors import ModelyardError
from modelyard.settings import Settings
from serving.protocols import grpc_v2
from serving.protocols.proto import grpc_predict_v2_pb2 as pb
from serving.protocols.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from serving.runtimes import RUNTIMES, RuntimeInfo, register

FAKE_RUNTIME = '''
    """A runtime of its own: onnxruntime called directly, not through serving's OnnxRuntime."""
    import numpy as np
    import onnxruntime as ort

    from serving.runtimes.base import Runtime


    class NumpyOnnx(Runtime):
        name = "fakert"

        def load(self):
            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
            self.input_name = self.session.get_inputs()[0].name

        def predict(self, x):
            return self.session.run(None, {self.input_name: np.asarray(x, np.float32)})[0]


    RUNTIME = NumpyOnnx
'''


@pytest.fixture
def fake_runtime(tmp_path, monkeypatch):
    (tmp_path / "fakert_module.py").write_text(textwrap.dedent(FAKE_RUNTIME))
    monkeypatch.syspath_prepend(str(tmp_path))
    register("fakert", RuntimeInfo("fakert_module", "fakert_fp32", "fake_platform"))  # the one line
    yield
    del RUNTIMES["fakert"]
    sys.modules.pop("fakert_module", None)


def _with_fake_variant(fixture_root, tmp_path):
    """A copy of the Boston fixture whose manifest lists the ONNX file once more, as format ``fakert``."""
    repo = tmp_path / "models"
    shutil.copytree(fixture_root / "repo" / "boston", repo / "boston")
    path = repo / "boston" / "1" / "manifest.json"
    m = json.loads(path.read_text())
    m["variants"]["fakert_fp32"] = {**m["variants"]["onnx_fp32"], "format": "fakert"}
    path.write_text(json.dumps(m))
    return repo


def test_a_registered_runtime_serves_rest_and_grpc(fake_runtime, fixture_root, tmp_path):
    ref = reference(fixture_root, "boston")
    with in_process(_with_fake_variant(fixture_root, tmp_path), runtime="fakert") as client:
        meta = client.get("/v2/models/boston").json()
        assert meta["platform"] == "fake_platform" and meta["parameters"]["variant"] == "fakert_fp32"
        r = client.post("/v1/models/boston:predict", json={"instances": ref["x"].tolist()})
        assert r.status_code == 200 and r.headers["x-model-variant"] == "fakert_fp32"
        np.testing.assert_allclose(r.json()["predictions"], ref["y"], atol=1e-4)
        dp = client.app.dp  # the gRPC server runs on the app's event loop, over the same data plane
        port = free_port()
        settings = Settings(host="127.0.0.1", grpc_port=port, runtime="fakert")
        server = client.portal.call(grpc_v2.start_grpc_server, dp, settings)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                x = ref["x"].astype(np.float32)
                request = pb.ModelInferRequest(
                    model_name="boston",
                    inputs=[
                        pb.ModelInferRequest.InferInputTensor(
                            name="features",
                            datatype="FP32",
                            shape=list(x.shape),
                            contents=pb.InferTensorContents(fp32_contents=x.ravel().tolist()),
                        )
                    ],
                )
                answer = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
            y = np.asarray(answer.outputs[0].contents.fp32_contents, np.float32).reshape(len(x), -1)
            np.testing.assert_allclose(y, ref["y"], atol=1e-4)
            assert answer.parameters["variant"].string_param == "fakert_fp32"
        finally:
            client.portal.call(grpc_v2.stop_grpc_server, server, 1.0)


def test_an_unknown_runtime_is_one_error_naming_the_known_ones(tmp_path):
    with pytest.raises(
        ModelyardError,
        match=r"--runtime \(env MODELYARD_RUNTIME\): 'nosuch' is not a runtime; "
        r"choose from onnx, tflite, savedmodel",
    ):
        with in_process(tmp_path, runtime="nosuch"):
            pass
