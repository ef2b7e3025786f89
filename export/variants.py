"""The export contract shared with serving: variant names, their paths in a version directory, and the
rejection rule. numpy-free and TensorFlow-free."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.errors import ModelyardError


class ExportError(ModelyardError):
    """An export request that cannot be carried out (bad option, unsupported model)."""


@dataclass(frozen=True)
class VariantSpec:
    name: str
    format: str  # VariantRecord.format
    path: str  # relative to the version directory
    description: str


VARIANTS: dict[str, VariantSpec] = {
    v.name: v
    for v in [
        VariantSpec("keras", "keras", "model.keras", "float Keras model (training)"),
        VariantSpec("savedmodel", "savedmodel", "savedmodel", "TF SavedModel, signature serving_default"),
        VariantSpec("tflite_fp32", "tflite", "tflite/fp32.tflite", "TFLite float32"),
        VariantSpec("tflite_dynamic", "tflite", "tflite/dynamic.tflite", "TFLite dynamic-range int8 weights"),
        VariantSpec("tflite_float16", "tflite", "tflite/float16.tflite", "TFLite float16 weights"),
        VariantSpec("tflite_int8", "tflite", "tflite/int8.tflite", "TFLite full-integer int8, float I/O"),
        VariantSpec("tflite_int8_io", "tflite", "tflite/int8_io.tflite", "TFLite full-integer int8, int8 I/O (edge)"),
        VariantSpec("tflite_qat_int8", "tflite", "tflite/qat_int8.tflite", "quantization-aware trained, int8"),
        VariantSpec("tflite_pruned_int8", "tflite", "tflite/pruned_int8.tflite", "pruned + full-integer int8"),
        VariantSpec("onnx_fp32", "onnx", "onnx/fp32.onnx", "ONNX float32 (tf2onnx)"),
        VariantSpec("onnx_int8", "onnx", "onnx/int8.onnx", "ONNX int8 QDQ"),
    ]
}

MODELS = ("imdb", "reuters", "boston")
FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZATIONS = ("dynamic", "float16", "int8", "qat")

# Rejection rule (issue 3): more than 1 accuracy point lost, or Boston's MAE up by more than 5%.
MAX_ACCURACY_DROP = 0.01
MAX_MAE_RISE = 0.05


def judge(metric: str, value: float, reference: float) -> tuple[str, str]:
    """``(status, reason)`` of a variant whose test ``metric`` is ``value`` against the Keras ``reference``."""
    if value != value:  # NaN
        return "rejected", f"{metric} is NaN"
    if metric == "mae":
        limit = reference * (1 + MAX_MAE_RISE)
        if value > limit:
            return "rejected", (
                f"MAE {value:.4f} is {100 * (value / reference - 1):.1f}% above Keras' "
                f"{reference:.4f} (limit +{100 * MAX_MAE_RISE:.0f}%)"
            )
        return "accepted", ""
    drop = reference - value
    if drop > MAX_ACCURACY_DROP:
        return "rejected", (
            f"{metric} {value:.4f} is {100 * drop:.2f} points below Keras' {reference:.4f} "
            f"(limit {100 * MAX_ACCURACY_DROP:.0f} point)"
        )
    return "accepted", ""


def parse_list(value: str | None, allowed: tuple[str, ...], what: str) -> list[str]:
    """A comma-separated option, checked against ``allowed``; None means all of them."""
    if value is None:
        return list(allowed)
    items = [v.strip().lower() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        raise ExportError(
            f"unknown {what} {', '.join(map(repr, unknown)) or repr(value)}; choose from {', '.join(allowed)}"
        )
    return list(dict.fromkeys(items))


def smallest_accepted(manifest, fmt: str, requested: str | None, flag: str, purpose: str) -> str:
    """The variant a bundle ships: ``requested`` (given with ``flag``) when it is one of the manifest's ``fmt``
    variants, else the smallest accepted one (gzip size, then size); a clear error otherwise."""
    label = {"onnx": "ONNX", "tflite": "TFLite"}.get(fmt, fmt)
    candidates = {n: r for n, r in manifest.variants.items() if r.format == fmt}
    if requested:
        if requested not in candidates:
            article = "an" if label[0] in "AEIOU" else "a"
            raise ExportError(
                f"{flag} {requested!r} is not {article} {label} variant of {manifest.name} "
                f"v{manifest.version} (have: {', '.join(sorted(candidates)) or 'none'})"
            )
        return requested
    accepted = {n: r for n, r in candidates.items() if r.status == "accepted"}
    if not accepted:
        raise ExportError(
            f"{manifest.name} v{manifest.version} has no accepted {label} variant for {purpose}; "
            f"export it first: modelyard export {manifest.name}"
        )
    return min(accepted, key=lambda n: (accepted[n].gzip_bytes, accepted[n].size_bytes, n))
