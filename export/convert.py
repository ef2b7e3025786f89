"""Conversions: SavedModel with a named serving signature, TFLite (from the SavedModel) in every
quantization mode, and ONNX with tf2onnx (fp32) plus the int8 routes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfshared.native_output import native_output_held
from tfshared.tfkeras import keras, tf

SIGNATURE = "serving_default"
ONNX_OPSET = 17
TFLITE_MODES = ("fp32", "dynamic", "float16", "int8", "int8_io", "qat_int8")


def save_savedmodel(model: keras.Model, path: Path, input_name: str, output_name: str) -> None:
    """A SavedModel whose ``serving_default`` signature takes ``input_name`` and returns ``output_name``."""
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name=input_name)

    @tf.function(input_signature=[spec])
    def serve(x):
        return {output_name: model(x, training=False)}

    module = tf.Module()
    module.model = model
    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={SIGNATURE: serve})


NORMALIZATION_OPS = ["SUB", "MUL", "DIV", "SQRT", "RSQRT", "MAXIMUM"]
"""The ops of an in-model Normalization layer. Raw Boston features (TAX ~700 beside NOX ~0.5) cannot share
one int8 input scale, so with float I/O these ops stay float and quantization starts after them."""


def tflite(
    savedmodel: Path, mode: str, representative: np.ndarray | None = None, float_ops: list[str] | None = None
) -> bytes:
    """``fp32``, ``dynamic`` (int8 weights), ``float16``, ``int8`` (full integer, float I/O), ``int8_io``
    (integer-only, int8 I/O) or ``qat_int8`` (int8 from the fake-quant ranges learned by QAT)."""
    conv = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel), signature_keys=[SIGNATURE])
    if mode != "fp32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if mode in ("int8", "int8_io", "qat_int8"):
        if representative is None:
            raise ValueError(f"{mode} needs a representative dataset")

        def gen():
            for row in representative:
                yield [row[None, :].astype(np.float32)]

        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode == "int8_io":
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        elif float_ops:  # keep these ops float, quantize the rest (selective quantization)
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
            with native_output_held():  # the debugger converts (and calibrates) as soon as it is built
                debugger = tf.lite.experimental.QuantizationDebugger(
                    converter=conv,
                    debug_dataset=gen,
                    debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops)),
                )
                return debugger.get_nondebug_quantized_model()
    with native_output_held():
        return conv.convert()


def onnx_fp32(model: keras.Model, path: Path, input_name: str) -> None:
    import tf2onnx

    spec = [tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name=input_name)]
    with native_output_held():
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=ONNX_OPSET, output_path=str(path))


def onnx_from_tflite(tflite_path: Path, path: Path) -> None:
    """tf2onnx's TFLite route: the int8 TFLite graph as an ONNX QDQ graph."""
    import tf2onnx

    with native_output_held():
        tf2onnx.convert.from_tflite(str(tflite_path), opset=ONNX_OPSET, output_path=str(path))


def onnx_static_int8(
    fp32_path: Path,
    path: Path,
    representative: np.ndarray,
    input_name: str,
    activation: str = "uint8",
    preprocess: bool = False,
    per_channel: bool = True,
) -> None:
    """onnxruntime's static quantization (QDQ, int8 weights) calibrated on training rows. With ``preprocess``,
    onnxruntime's ``quant_pre_process`` runs first: its graph optimization fuses each Dense layer's MatMul + Add
    into one Gemm, which onnxruntime runs as a single int8 QGemm (the graph quantizes once at the input and
    dequantizes once at the output) instead of QLinearMatMul + QLinearAdd with a requantization between them,
    the overhead that makes int8 slower than fp32 on a model as small as Boston. ``per_channel=False`` gives
    each weight matrix one scale, which measured the faster QGemm there."""
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter(np.array_split(representative, max(1, len(representative) // 32)))

        def get_next(self):
            batch = next(self.rows, None)
            return None if batch is None else {input_name: batch.astype(np.float32)}

    # native_output_held: onnxruntime logs "consider pre-processing" for the routes compared without it
    with tempfile.TemporaryDirectory() as tmp, native_output_held():
        source = Path(tmp) / "preprocessed.onnx" if preprocess else fp32_path
        if preprocess:  # symbolic shape inference is for transformers (and needs sympy); ONNX's suffices here
            quant_pre_process(str(fp32_path), str(source), skip_symbolic_shape=True)
        quantize_static(
            str(source),
            str(path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8 if activation == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm", "Add", "Relu"],
        )
