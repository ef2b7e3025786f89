"""Each conversion on a tiny model: files where the contract puts them, figures measured with each
artifact's own runtime, I/O specs read from the artifact, and every file's sha256 in the manifest."""

from __future__ import annotations

import pytest

from export.variants import VARIANTS

ALL = [
    "keras",
    "savedmodel",
    "tflite_fp32",
    "tflite_dynamic",
    "tflite_float16",
    "tflite_int8",
    "tflite_int8_io",
    "tflite_qat_int8",
    "tflite_pruned_int8",
    "onnx_fp32",
    "onnx_int8",
]


@pytest.mark.parametrize("name", ["imdb", "boston"])
def test_every_variant_is_written_validated_and_hashed(exported, name):
    repo, results = exported
    m = repo.manifest(name)
    vdir = repo.path(name, m.version)
    assert sorted(m.variants) == sorted(ALL)
    metric = "mae" if name == "boston" else "accuracy"
    for vname, rec in m.variants.items():
        assert rec.path == VARIANTS[vname].path
        assert (vdir / rec.path).exists(), vname
        assert rec.format == VARIANTS[vname].format
        assert rec.metric == metric
        assert rec.size_bytes > 0 and 0 < rec.gzip_bytes
        assert rec.latency_ms_b1 > 0 and rec.latency_ms_b64 > 0
        assert rec.inputs and rec.outputs, vname
        assert rec.status in ("accepted", "rejected")
        assert (rec.status == "rejected") == bool(rec.reason)
        assert abs(rec.delta - (rec.value - m.variants["keras"].value)) < 1e-9
    assert repo.verify(name, m.version) == []  # every file's sha256 is in the manifest
    assert (vdir / "export_report.md").read_text().count("|") > 50
    assert (vdir / "export_report.png").stat().st_size > 1000
    assert not list(vdir.rglob(".candidate-*"))


def test_float_variants_match_keras(exported):
    repo, _ = exported
    for name in ("imdb", "boston"):
        v = repo.manifest(name).variants
        for vname in ("savedmodel", "tflite_fp32", "onnx_fp32"):
            assert v[vname].max_abs_diff < 1e-4, (name, vname, v[vname].max_abs_diff)
            assert v[vname].status == "accepted"
    assert repo.manifest("imdb").variants["onnx_fp32"].max_abs_diff < 1e-5


def test_io_specs_are_read_from_each_artifact(exported):
    repo, _ = exported
    v = repo.manifest("imdb").variants
    assert v["savedmodel"].inputs[0].name == "multi_hot"
    assert v["savedmodel"].outputs[0].name == "probability"
    assert v["savedmodel"].inputs[0].shape == [None, 64]
    assert v["onnx_fp32"].inputs[0].name == "multi_hot"
    assert v["tflite_int8"].inputs[0].dtype == "float32"
    assert v["tflite_int8_io"].inputs[0].dtype == "int8" and v["tflite_int8_io"].outputs[0].dtype == "int8"
    assert v["tflite_fp32"].inputs[0].shape == [None, 64]
    assert repo.manifest("boston").variants["savedmodel"].inputs[0].name == "features"


def test_quantized_variants_are_smaller_and_pruned_is_sparse(exported):
    repo, _ = exported
    v = repo.manifest("imdb").variants
    fp32 = v["tflite_fp32"].size_bytes
    for vname in ("tflite_dynamic", "tflite_float16", "tflite_int8", "tflite_qat_int8", "tflite_pruned_int8"):
        assert v[vname].size_bytes < fp32, vname
    pr = v["tflite_pruned_int8"]
    assert pr.details["layer_sparsity"]  # per-layer figures
    assert max(pr.details["layer_sparsity"].values()) == pytest.approx(0.8, abs=0.02)
    assert pr.sparsity > 0.5
    assert pr.gzip_bytes < v["tflite_int8"].gzip_bytes
    sched = pr.details["schedule"]
    assert sched["end_step"] <= sched["total_steps"] and sched["end_step"] % sched["frequency"] == 0
    # Boston: the in-model Normalization stays float, so int8 with float I/O keeps its MAE.
    b = repo.manifest("boston").variants
    assert b["tflite_int8"].details.get("float_ops")
    assert b["tflite_int8"].status == "accepted", b["tflite_int8"].reason


def test_onnx_int8_keeps_one_route_and_reports_the_others(exported):
    repo, _ = exported
    rec = repo.manifest("imdb").variants["onnx_int8"]
    assert rec.details["route"] in rec.details["candidates"]
    assert len(rec.details["candidates"]) == 4
    # fp32 and the candidates are timed again, interleaved, and those are the figures compared and recorded
    fp32 = repo.manifest("imdb").variants["onnx_fp32"]
    assert rec.details["fp32_latency_ms_b64"] == fp32.latency_ms_b64
    assert rec.latency_ms_b64 == rec.details["candidates"][rec.details["route"]]["latency_ms_b64"]


def test_preprocessed_static_route_is_an_int8_gemm_per_dense_layer(exported, tiny_trained, tmp_path):
    """quant_pre_process fuses MatMul + Add into Gemm: int8 weights, and one QGemm per Dense layer in onnxruntime."""
    import onnx
    import onnxruntime as ort

    from export import convert

    repo, _ = exported
    m = repo.manifest("boston")
    assert m.variants["onnx_int8"].details["candidates"]["ort_static_gemm_u8s8"] is not None
    fp32, out = repo.path("boston", m.version) / "onnx/fp32.onnx", tmp_path / "int8.onnx"
    convert.onnx_static_int8(
        fp32,
        out,
        tiny_trained["boston"].x_train[:64],
        m.variants["onnx_fp32"].inputs[0].name,
        "uint8",
        preprocess=True,
        per_channel=False,
    )
    graph = onnx.load(str(out)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("Gemm") == 3 and "MatMul" not in ops
    kernels = [t for t in graph.initializer if len(t.dims) == 2 and t.dims[0] > 1]
    assert len(kernels) == 3 and all(t.data_type == onnx.TensorProto.INT8 for t in kernels)
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"])
    optimized = [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    assert optimized.count("QGemm") == 3 and optimized.count("QuantizeLinear") == 1


def test_schedule_fits_the_real_number_of_steps():
    from export.finetune import pruning_schedule

    s = pruning_schedule(0.8, 13)  # Boston-sized: 13 steps; the default frequency of 100 would never prune
    assert s["frequency"] <= s["end_step"] <= 13
    assert s["end_step"] % s["frequency"] == 0
    big = pruning_schedule(0.8, 1000)
    assert big["end_step"] == 750 and big["frequency"] == 75
