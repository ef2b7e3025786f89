"""TF Serving's REST API, as a drop-in: ``:predict`` answers exactly as TF Serving answers for the exported
serving signature (row format: ``predictions``, the output tensor's rows; columnar: ``outputs``), ``:classify``
and ``:regress`` answer TF Serving's ``result`` shapes, ``{"b64": ...}`` is accepted wherever a string is.

Besides the signature's own input (the multi-hot vector, Boston's 13 features), instances may be what people
have: raw text, ``{"text": ...}``, ``{"ids": [...]}``, ``{"multi_hot": [...]}`` or Boston's features by name.
"""

from __future__ import annotations

import base64
import binascii
import numpy as np

from modelyard.encoding import IdRows, features_to_rows
from modelyard.errors import EncodingError
from modelyard.tasks import Regression
from serving.codecs import IDS, TEXT, Decoded, ModelCodec, numbers
from serving.errors import BadRequest

SIGNATURE = "serving_default"
SIGNATURES = {"predict": (SIGNATURE,), "classify": (SIGNATURE, "classification"), "regress": (SIGNATURE, "regression")}
"""The signature names each route accepts (absent or empty: the first)."""
INSTANCES = (
    'row format: raw text, {"b64": ...}, {"text": ...}, {"ids": [...]}, {"multi_hot": [...]} or '
    'the multi-hot row (IMDB, Reuters); 13 numbers, {"features": [...]} or the features by name (Boston); '
    'columnar: {"inputs": {name: column}}'
)
"""What ``:predict`` instances may be, for the metadata."""
TF_DTYPE = {
    "float32": "DT_FLOAT",
    "int64": "DT_INT64",
    "int32": "DT_INT32",
    "int8": "DT_INT8",
    "uint8": "DT_UINT8",
    "string": "DT_STRING",
}


def check_request(body, method: str, key: str) -> None:
    """A JSON object with ``key`` and, when given, a known ``signature_name``."""
    if not isinstance(body, dict):
        raise BadRequest(f"body: must be a JSON object with '{key}'")
    name = body.get("signature_name")
    known = SIGNATURES[method]
    if name not in (None, "") and name not in known:
        raise BadRequest(
            f"signature_name: '{name}' is not a signature of this model for :{method} (signatures: {', '.join(known)})"
        )


def text_value(v):
    """A string as TF Serving carries it: ``"..."`` or ``{"b64": "..."}`` (bytes); None when ``v`` is neither."""
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and len(v) == 1 and isinstance(v.get("b64"), str):
        try:
            return base64.b64decode(v["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("b64: not valid base64") from None
    return None


# ------------------------------------------------------------------ :predict
def decode_predict(codec: ModelCodec, body, max_instances: int) -> Decoded:
    """``{"instances": [...]}`` (row format) or ``{"inputs": ...}`` (columnar, answered as ``outputs``)."""
    check_request(body, "predict", "instances' or 'inputs")
    has_i, has_c = "instances" in body, "inputs" in body
    if has_i == has_c:
        raise BadRequest("body: give exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    if has_i:
        inst = body["instances"]
        if not isinstance(inst, list):
            raise BadRequest("instances: must be a list")
        codec.check_count(len(inst), "instances", max_instances)
        return decode_instances(codec, inst, "instances")
    cols = body["inputs"]
    if isinstance(cols, list):
        codec.check_count(len(cols), "inputs", max_instances)
        return decode_instances(codec, cols, "inputs")
    text = text_value(cols)
    if text is not None and codec.kind == "text":
        return codec.texts([text], "inputs")
    if not isinstance(cols, dict):
        raise BadRequest("inputs: must be a list or an object of named columns")
    return decode_columns(codec, cols, max_instances)


def encode_predict(y: np.ndarray, body: dict) -> dict:
    """The answer to a :func:`decode_predict` request: ``outputs`` in the columnar format, else ``predictions``."""
    return {"outputs" if "inputs" in body else "predictions": y.tolist()}


def decode_instances(codec: ModelCodec, inst: list, what: str) -> Decoded:
    """Instances all of one form (the first one's; the others are looked at only when there are several), else
    :func:`_mixed_text_instances`."""
    if codec.kind == "tabular":
        return _feature_instances(codec, inst, what)
    first = inst[0]
    one = len(inst) == 1
    if isinstance(first, dict):
        if (
            len(first) == 1
            and IDS in first
            and (one or all(isinstance(i, dict) and len(i) == 1 and IDS in i for i in inst))
        ):
            return Decoded(codec.id_rows([first[IDS]] if one else [i[IDS] for i in inst], what, ".ids"))
    elif isinstance(first, str):
        if one or all(isinstance(i, str) for i in inst):
            return codec.texts(inst, what)
    elif isinstance(first, list) and (one or all(isinstance(i, list) for i in inst)):  # multi-hot rows: the
        return Decoded(codec.rows(numbers(inst, what), what))  # signature's input
    return _mixed_text_instances(codec, inst, what)


def _mixed_text_instances(codec: ModelCodec, inst: list, what: str) -> Decoded:
    """Instances of different forms, each decoded on its own and joined."""
    parts, tokens, oov = [], [], []
    for r, i in enumerate(inst):
        where = f"{what}[{r}]"
        key, value = None, i
        if isinstance(i, dict) and text_value(i) is None:
            keys = [k for k in i if k in (TEXT, IDS, codec.input_name)]
            if len(i) != 1 or len(keys) != 1:
                raise BadRequest(
                    f"{where}: expected one key of {TEXT}, {IDS}, {codec.input_name}; "
                    f"got {', '.join(map(str, i)) or 'none'}"
                )
            key = keys[0]
            value = i[key]
            where += f".{key}"
        text = text_value(value) if key in (None, TEXT) else None
        if text is not None:
            d = codec.texts([text], where)
            tokens += d.text_tokens
            oov += d.text_oov
            parts.append(d.x)
        elif key == IDS:
            parts.append(codec.id_rows([value], where))
        elif isinstance(value, list) and key in (None, codec.input_name):
            parts.append(codec.rows(numbers(value, where), where))
        else:
            raise BadRequest(
                f'{where}: must be text (a string or {{"b64": ...}}), {{"ids": [...]}} or a '
                f"multi-hot list, got {type(value).__name__}"
            )
    return Decoded(
        np.concatenate([p.dense() if isinstance(p, IdRows) else p for p in parts]), tokens or None, oov or None
    )


def _feature_instances(codec: ModelCodec, inst: list, what: str) -> Decoded:
    """Boston: lists of 13 numbers, ``{"features": [...]}`` (the signature's input by name), or named features."""
    key = codec.input_name
    try:
        rows = features_to_rows(
            [i[key] if isinstance(i, dict) and set(i) == {key} else i for i in inst], codec.feature_names
        )
    except EncodingError as e:
        msg = str(e)
        if msg.startswith("instance "):
            index, _, rest = msg[len("instance ") :].partition(": ")
            raise BadRequest(f"{what}[{index}]: {rest}") from None
        raise BadRequest(f"{what}: {msg}") from None
    return Decoded(rows)


def decode_columns(codec: ModelCodec, cols: dict, max_instances: int) -> Decoded:
    if codec.kind == "tabular":
        if set(cols) == {codec.input_name}:
            arr = codec.rows(
                numbers(cols[codec.input_name], f"inputs.{codec.input_name}"), f"inputs.{codec.input_name}"
            )
            codec.check_count(len(arr), f"inputs.{codec.input_name}", max_instances)
            return Decoded(arr)
        codec.check_feature_names(cols, "inputs: ")
        columns = [numbers(cols[f], f"inputs.{f}").reshape(-1) for f in codec.feature_names]
        if len({len(c) for c in columns}) != 1:
            raise BadRequest("inputs: every feature column must have the same length")
        codec.check_count(len(columns[0]), "inputs", max_instances)
        return Decoded(np.stack(columns, axis=1))
    keys = (TEXT, IDS, codec.input_name)
    if len(cols) != 1 or next(iter(cols)) not in keys:
        raise BadRequest(f"inputs: expected one of {', '.join(keys)}; got {', '.join(map(str, cols)) or 'none'}")
    k, v = next(iter(cols.items()))
    what = f"inputs.{k}"
    if text_value(v) is not None:
        v = [v]
    if not isinstance(v, list):
        raise BadRequest(f"{what}: must be a list")
    codec.check_count(len(v), what, max_instances)
    if k == TEXT:
        texts = [text_value(t) for t in v]
        return codec.texts([t if t is not None else v[i] for i, t in enumerate(texts)], what)
    if k == IDS:
        return Decoded(codec.id_rows(v if isinstance(v[0], list) else [v], what))
    return Decoded(codec.rows(numbers(v, what), what))


# ------------------------------------------------------------ :classify, :regress
def decode_examples(codec: ModelCodec, body, method: str, max_instances: int) -> Decoded:
    """``{"examples": [{...}, ...], "context": {...}}``: each example (with the context's features) is one
    instance, as a text model's ``{"text": ...}`` / ``{"ids": ...}`` or Boston's named features."""
    check_request(body, method, "examples")
    examples = body.get("examples")
    if not isinstance(examples, list) or not all(isinstance(e, dict) for e in examples):
        raise BadRequest("examples: field required; must be a list of objects of named features")
    context = body.get("context") or {}
    if not isinstance(context, dict):
        raise BadRequest("context: must be an object of named features")
    codec.check_count(len(examples), "examples", max_instances)
    merged = [{**context, **e} for e in examples]
    if codec.kind == "tabular":
        return _feature_instances(codec, [_scalars(e) for e in merged], "examples")
    return _mixed_text_instances(codec, merged, "examples")


def _scalars(example: dict) -> dict:
    """tf.Example features are lists: a one-element list of a number is that number."""
    return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in example.items()}


def encode_classify(codec: ModelCodec, y: np.ndarray) -> dict:
    """``{"result": [[[label, score], ...] per example]}``: every class with its score, in label order."""
    task = codec.task
    scores = task.scores(y).tolist()
    return {"result": [[[label, s] for label, s in zip(task.labels, row)] for row in scores]}


def encode_regress(codec: ModelCodec, y: np.ndarray) -> dict:
    return {"result": y[:, 0].tolist()}


def check_method(codec: ModelCodec, method: str) -> None:
    """Before the model runs (the encoders rely on it): ``:classify`` needs a classifier, ``:regress`` a
    regression model."""
    regression = isinstance(codec.task, Regression)
    if method == "classify" and regression:
        raise BadRequest(f"model '{codec.manifest.name}' is a regression model: use :regress or :predict")
    if method == "regress" and not regression:
        raise BadRequest(f"model '{codec.manifest.name}' is a classifier: use :classify or :predict")


# ------------------------------------------------------------------ metadata
def signature_defs(codec: ModelCodec, inputs, outputs) -> dict:
    """The exported serving signature (what ``:predict`` answers from), and the classify / regress signature."""

    def sig(specs):
        return {
            t.name: {
                "dtype": TF_DTYPE.get(t.dtype, "DT_INVALID"),
                "name": t.name,
                "tensor_shape": {"dim": [{"size": str(d if d is not None else -1)} for d in t.shape]},
            }
            for t in specs
        }

    def tensor(name, dtype, dims):
        return {"dtype": dtype, "name": name, "tensor_shape": {"dim": [{"size": str(d)} for d in dims]}}

    defs = {SIGNATURE: {"inputs": sig(inputs), "outputs": sig(outputs), "method_name": "tensorflow/serving/predict"}}
    examples = {"inputs": tensor("inputs", "DT_STRING", [-1])}
    if isinstance(codec.task, Regression):
        defs["regression"] = {
            **examples,
            "outputs": {"outputs": tensor("outputs", "DT_FLOAT", [-1, 1])},
            "method_name": "tensorflow/serving/regress",
        }
    else:
        defs["classification"] = {
            **examples,
            "outputs": {
                "classes": tensor("classes", "DT_STRING", [-1, len(codec.labels)]),
                "scores": tensor("scores", "DT_FLOAT", [-1, len(codec.labels)]),
            },
            "method_name": "tensorflow/serving/classify",
        }
    return defs
