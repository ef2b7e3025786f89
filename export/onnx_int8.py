"""ONNX: fp32 with tf2onnx, and an int8 QDQ model from whichever route is more accurate and faster on
onnxruntime: tf2onnx's TFLite path (from the int8 TFLite file) or onnxruntime's static quantization (u8s8 or
s8s8 with per-channel weights, or u8s8 with per-tensor weights after onnxruntime's pre-processing, which makes
each Dense layer one QGemm: the fastest int8 graph for a model as small as Boston)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from export import convert
from export.runtimes import OnnxRunner
from export.validate import interleaved_latency_ms
from export.variants import VARIANTS


def _quality(rec) -> float:
    return -rec.value if rec.metric == "mae" else rec.value


def export_onnx(ex, model, int8_tflite: Path | None, sparsity: float) -> None:
    fp32 = ex._fresh(VARIANTS["onnx_fp32"].path)
    ex.say("converting onnx_fp32 (tf2onnx)")
    t = time.time()
    convert.onnx_fp32(model, fp32, ex.data.input_name)
    ex.records["onnx_fp32"] = ex.check(
        "onnx_fp32",
        OnnxRunner(fp32),
        sparsity=sparsity,
        details={"route": "tf2onnx.from_keras", "opset": convert.ONNX_OPSET, "convert_s": round(time.time() - t, 2)},
    )
    if int8_tflite is None:
        return

    rep, input_name = ex.data.representative(), ex.records["onnx_fp32"].inputs[0].name

    def ort_static(activation: str, **options):
        return lambda p: convert.onnx_static_int8(fp32, p, rep, input_name, activation, **options)

    routes = {
        "tf2onnx_tflite": lambda p: convert.onnx_from_tflite(int8_tflite, p),
        "ort_static_u8s8": ort_static("uint8"),
        "ort_static_s8s8": ort_static("int8"),
        "ort_static_gemm_u8s8": ort_static("uint8", preprocess=True, per_channel=False),
    }
    final = ex._fresh(VARIANTS["onnx_int8"].path)
    candidates = {}
    for route, make in routes.items():
        rel = f"onnx/.candidate-{route}.onnx"
        path = ex.dir / rel
        ex.say(f"onnx_int8 candidate: {route}")
        try:
            t = time.time()
            make(path)
            rec = ex.check(
                "onnx_int8",
                OnnxRunner(path),
                sparsity=sparsity,
                rel=rel,
                details={"route": route, "convert_s": round(time.time() - t, 2)},
            )
            candidates[route] = rec
        except Exception as e:  # noqa: BLE001 - a route that fails to convert or to load is reported, not fatal
            ex.say(f"[yellow]{route} failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}[/yellow]")
            candidates[route] = None
    ok = {r: c for r, c in candidates.items() if c is not None}
    if not ok:
        for route in routes:
            (ex.dir / f"onnx/.candidate-{route}.onnx").unlink(missing_ok=True)
        ex.say("[red]no int8 ONNX route converted; onnx_int8 not produced[/red]")
        return
    # Timings taken minutes apart differ (with the machine's load) more than these models do: time fp32 and
    # every candidate at batch 64 again, interleaved, and record and compare those figures.
    runners = {"onnx_fp32": OnnxRunner(fp32), **{r: OnnxRunner(ex.dir / f"onnx/.candidate-{r}.onnx") for r in ok}}
    b64 = interleaved_latency_ms(runners, ex.data.latency_batch(64))
    ex.say("batch 64, timed interleaved: " + ", ".join(f"{r} {ms:.4f} ms" for r, ms in b64.items()))
    fp32_b64 = ex.records["onnx_fp32"].latency_ms_b64 = b64.pop("onnx_fp32")
    for route, ms in b64.items():
        ok[route].latency_ms_b64 = ms
    # Accepted first, then at least as fast as fp32 at batch 64, then the more accurate, then the faster.
    best = min(
        ok,
        key=lambda r: (
            ok[r].status != "accepted",
            ok[r].latency_ms_b64 > fp32_b64,
            -round(_quality(ok[r]), 4),
            ok[r].latency_ms_b64,
        ),
    )
    shutil.move(ex.dir / f"onnx/.candidate-{best}.onnx", final)
    for route in routes:
        (ex.dir / f"onnx/.candidate-{route}.onnx").unlink(missing_ok=True)
    rec = ok[best].model_copy(update={"path": VARIANTS["onnx_int8"].path})
    rec.details["candidates"] = {
        r: (
            None
            if c is None
            else {
                "value": c.value,
                "max_abs_diff": c.max_abs_diff,
                "size_bytes": c.size_bytes,
                "latency_ms_b1": c.latency_ms_b1,
                "latency_ms_b64": c.latency_ms_b64,
                "status": c.status,
            }
        )
        for r, c in candidates.items()
    }
    rec.details["fp32_latency_ms_b64"] = fp32_b64
    ex.records["onnx_int8"] = rec
    ex.say(f"onnx_int8: kept {best}")
