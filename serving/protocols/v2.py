"""KServe V2 / Open Inference Protocol over REST, as Triton implements it: JSON tensors, and Triton's binary
tensor data extension (``Inference-Header-Content-Length``: a JSON header, then each binary tensor's bytes in
order; ``binary_data_size`` on inputs and outputs, ``binary_data`` on requested outputs, ``binary_data_output``
on the request). Parsing and encoding only: :class:`serving.dataplane.DataPlane` does the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import prod

import numpy as np
import orjson

from serving.errors import BadRequest
from serving.protocols.http import parse_json
from serving.tensors import (
    NUMPY_DTYPES,
    InferRequest,
    InferResponse,
    RequestedOutput,
    Tensor,
    check_datatype,
    check_shape,
    from_raw,
    to_raw,
)

HEADER_LENGTH = "inference-header-content-length"


def parse_infer(body: bytes, header_length: str | None) -> InferRequest:
    """A V2 infer body (JSON, or JSON header + binary tensors) -> :class:`InferRequest`."""
    binary = memoryview(b"")
    if header_length is not None:
        if not header_length.isascii() or not header_length.isdigit() or int(header_length) > len(body):
            raise BadRequest(
                f"Inference-Header-Content-Length: {header_length!r} is not a length within the "
                f"body of {len(body)} bytes"
            )
        n = int(header_length)
        binary = memoryview(body)[n:]
        body = body[:n]
    obj = parse_json(body)
    if not isinstance(obj, Mapping):
        raise BadRequest("body: must be a JSON object with 'inputs'")
    inputs = obj.get("inputs")
    if not isinstance(inputs, list):
        raise BadRequest("inputs: field required; must be a list of tensors")
    tensors, used = [], 0
    for i, t in enumerate(inputs):
        tensor, size = _input(t, i, binary[used:])
        tensors.append(tensor)
        used += size
    if used != len(binary):
        raise BadRequest(f"body: {len(binary) - used} bytes of binary data follow the last binary tensor")
    rid = obj.get("id")
    if rid is not None and not isinstance(rid, str):
        raise BadRequest("id: must be a string")
    return InferRequest(tensors, _outputs(obj.get("outputs")), rid, _parameters(obj.get("parameters"), "parameters"))


def _parameters(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadRequest(f"{where}: must be an object")
    return dict(value)


def _outputs(value) -> list[RequestedOutput] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(o, Mapping) and isinstance(o.get("name"), str) for o in value):
        raise BadRequest('outputs: must be a list of {"name": ..., "parameters": {...}}')
    return [
        RequestedOutput(o["name"], _parameters(o.get("parameters"), f"outputs[{i}].parameters"))
        for i, o in enumerate(value)
    ]


def _input(t, i: int, binary: memoryview) -> tuple[Tensor, int]:
    """One request input and how many bytes of the binary section it used."""
    if not isinstance(t, Mapping):
        raise BadRequest(f"inputs[{i}]: must be an object with name, shape, datatype and data")
    name = t.get("name")
    if not isinstance(name, str):
        raise BadRequest(f"inputs[{i}].name: field required; must be a string")
    where = f"inputs[{i}] '{name}'"
    for key in ("shape", "datatype"):
        if key not in t:
            raise BadRequest(f"{where}.{key}: field required")
    shape = check_shape(t["shape"], where)
    datatype = check_datatype(t["datatype"], where)
    params = _parameters(t.get("parameters"), f"{where}.parameters")
    size = params.get("binary_data_size")
    if size is None:
        if "data" not in t:
            raise BadRequest(f"{where}.data: field required (or parameters.binary_data_size with binary data)")
        return json_tensor(name, datatype, shape, t["data"], where), 0
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > len(binary):
        raise BadRequest(
            f"{where}.parameters.binary_data_size: {size!r}, but {len(binary)} bytes of binary data are left"
        )
    return from_raw(name, datatype, shape, binary[:size], where), size


def json_tensor(name: str, datatype: str, shape: list[int], data, where: str) -> Tensor:
    """A tensor from JSON ``data`` (flat or nested, row-major), with values checked against the datatype."""
    if datatype == "BYTES":
        values = _flat_strings(data, where)
        if len(values) != prod(shape):
            raise BadRequest(f"{where}: {len(values)} values do not fill shape {shape}")
        return Tensor(name, datatype, shape, np.array(values, dtype=object) if values else np.empty(0, object))
    try:
        arr = np.array(data)
    except (ValueError, TypeError):
        raise BadRequest(f"{where}.data: nested lists of unequal length") from None
    _check_kind(arr, datatype, where)
    if arr.size != prod(shape):
        raise BadRequest(f"{where}: {arr.size} values do not fill shape {shape}")
    return Tensor(name, datatype, shape, arr.astype(NUMPY_DTYPES[datatype]).reshape(shape))


def _check_kind(arr: np.ndarray, datatype: str, where: str) -> None:
    """JSON values the datatype cannot hold: a 400, never a silent conversion."""
    kind = arr.dtype.kind
    if datatype == "BOOL":
        ok = kind == "b" or arr.size == 0
    elif datatype.startswith(("INT", "UINT")):
        info = np.iinfo(NUMPY_DTYPES[datatype])
        ok = kind in "iu" and (not arr.size or info.min <= arr.min() and arr.max() <= info.max) or arr.size == 0
        if not ok and kind in "iuf":
            raise BadRequest(
                f"{where}.data: {datatype} holds integers in [{info.min}, {info.max}]; got a value "
                "outside that range, or with a fraction or an exponent"
            )
    else:
        ok = kind in "iuf" or arr.size == 0
    if not ok:
        got = {"b": "booleans", "U": "strings", "O": "values out of range or of mixed types"}.get(kind, arr.dtype)
        raise BadRequest(f"{where}.data: datatype {datatype}, got {got}")


def _flat_strings(data, where: str) -> list:
    if isinstance(data, str):
        return [data]
    if not isinstance(data, list):
        raise BadRequest(f"{where}.data: BYTES data must be a list of strings")
    if all(isinstance(d, str) for d in data):
        return data
    out = []
    for d in data:
        if isinstance(d, list):
            out += _flat_strings(d, where)
        elif isinstance(d, str):
            out.append(d)
        else:
            raise BadRequest(f"{where}.data: BYTES elements must be strings, got {type(d).__name__}")
    return out


def encode_infer(resp: InferResponse, binary_output: bool) -> tuple[bytes, int | None]:
    """The answer body, and the JSON header's length when binary tensors follow it (else None).

    An output goes binary when it was requested with ``binary_data: true``, or, unless requested with
    ``binary_data: false``, when the request set ``binary_data_output``."""
    outputs, blobs = [], []
    for t in resp.outputs:
        binary = t.parameters.get("binary_data", binary_output)
        out = {"name": t.name, "datatype": t.datatype, "shape": t.shape}
        if binary is True:
            raw = to_raw(t)
            blobs.append(raw)
            out["parameters"] = {"binary_data_size": len(raw)}
        else:
            out["data"] = t.data.ravel().tolist()
        outputs.append(out)
    header = orjson.dumps(
        {
            "model_name": resp.model_name,
            "model_version": resp.model_version,
            "id": resp.id,
            "parameters": resp.parameters,
            "outputs": outputs,
        }
    )
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)
