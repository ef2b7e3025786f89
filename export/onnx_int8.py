"""ONNX: fp32 with tf2onnx, and an int8 QDQ model from whichever route is more accurate and faster on
onnxruntime: tf2onnx's TFLite path (from the int8 TFLite file) or onnxruntime's static quantization."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from export import convert
from export.runtimes import OnnxRunner
from export.variants import VARIANTS


def _quality(rec) -> float:
    return -rec.value if rec.metric == "mae" else rec.value


def export_onnx(ex, model, int8_tflite: Path | None, sparsity: float) -> None:
    fp32 = ex._fresh(VARIANTS["onnx_fp32"].path)
    ex.say("converting onnx_fp32 (tf2onnx)")
    t = time.time()
    convert.onnx_fp32(model, fp32, ex.data.input_name)
    ex.records["onnx_fp32"] = ex.check("onnx_fp32", OnnxRunner(fp32), sparsity=sparsity,
                                       details={"route": "tf2onnx.from_keras", "opset": convert.ONNX_OPSET,
                                                "convert_s": round(time.time() - t, 2)})
    if int8_tflite is None:
        return

    rep = ex.data.representative()
    routes = {
        "tf2onnx_tflite": lambda p: convert.onnx_from_tflite(int8_tflite, p),
        "ort_static_u8s8": lambda p: convert.onnx_static_int8(fp32, p, rep, ex.records["onnx_fp32"].inputs[0].name,
                                                              "uint8"),
        "ort_static_s8s8": lambda p: convert.onnx_static_int8(fp32, p, rep, ex.records["onnx_fp32"].inputs[0].name,
                                                              "int8"),
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
            rec = ex.check("onnx_int8", OnnxRunner(path), sparsity=sparsity, rel=rel,
                           details={"route": route, "convert_s": round(time.time() - t, 2)})
            candidates[route] = rec
        except Exception as e:  # a route that fails to convert or to load is reported, not fatal
            ex.say(f"[yellow]{route} failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}[/yellow]")
            candidates[route] = None
    fp32_b64 = ex.records["onnx_fp32"].latency_ms_b64
    ok = {r: c for r, c in candidates.items() if c is not None}
    if not ok:
        for route in routes:
            (ex.dir / f"onnx/.candidate-{route}.onnx").unlink(missing_ok=True)
        ex.say("[red]no int8 ONNX route converted; onnx_int8 not produced[/red]")
        return
    # Accepted first, then at least as fast as fp32 at batch 64, then the more accurate, then the faster.
    best = min(ok, key=lambda r: (ok[r].status != "accepted", ok[r].latency_ms_b64 > fp32_b64,
                                  -round(_quality(ok[r]), 4), ok[r].latency_ms_b64))
    shutil.move(ex.dir / f"onnx/.candidate-{best}.onnx", final)
    for route in routes:
        (ex.dir / f"onnx/.candidate-{route}.onnx").unlink(missing_ok=True)
    rec = ok[best].model_copy(update={"path": VARIANTS["onnx_int8"].path})
    rec.details["candidates"] = {
        r: (None if c is None else {"value": c.value, "max_abs_diff": c.max_abs_diff, "size_bytes": c.size_bytes,
                                    "latency_ms_b1": c.latency_ms_b1, "latency_ms_b64": c.latency_ms_b64,
                                    "status": c.status})
        for r, c in candidates.items()}
    rec.details["fp32_latency_ms_b64"] = fp32_b64
    ex.records["onnx_int8"] = rec
    ex.say(f"onnx_int8: kept {best}")
