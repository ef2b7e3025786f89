"""Protocol-neutral tensors, as the Open Inference Protocol (KServe V2) defines them.

Every V2 transport (REST with JSON data, REST with Triton's binary tensor data extension, gRPC with typed or raw
contents) decodes a request into an :class:`InferRequest` and encodes an :class:`InferResponse`; the data plane and
the model codecs see only these. Raw tensor bytes are laid out as Triton and the V2 gRPC ``raw_*_contents`` fields
lay them out: numbers little-endian in row-major order, each BYTES element a 4-byte little-endian length and then
its bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from math import prod

import numpy as np

from serving.errors import BadRequest

NUMPY_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
"""Numeric V2 datatypes and their little-endian numpy dtypes; ``BYTES`` is the one other datatype."""
DATATYPES = (*NUMPY_DTYPES, "BYTES")


@dataclass(slots=True)
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray
    """Numeric: an array of the datatype's dtype, shaped ``shape``. BYTES: a flat object array of ``bytes``
    (binary transports) or ``str`` (JSON), one element per value."""
    parameters: dict = field(default_factory=dict)


@dataclass(slots=True)
class RequestedOutput:
    name: str
    parameters: dict = field(default_factory=dict)


@dataclass(slots=True)
class InferRequest:
    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None = None
    """None: every output the model declares."""
    id: str | None = None
    parameters: dict = field(default_factory=dict)


@dataclass(slots=True)
class InferResponse:
    model_name: str
    model_version: str
    id: str
    outputs: list[Tensor]
    parameters: dict = field(default_factory=dict)


def check_shape(shape, where: str) -> list[int]:
    """A tensor's declared shape: a list of non-negative integers, else a 400 naming the tensor."""
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadRequest(f"{where}.shape: must be a list of non-negative integers, got {shape!r}")
    return list(shape)


def check_datatype(datatype, where: str) -> str:
    if datatype not in DATATYPES:
        raise BadRequest(f"{where}.datatype: unknown datatype {datatype!r} (V2 datatypes: {', '.join(DATATYPES)})")
    return datatype


def from_raw(name: str, datatype: str, shape: list[int], raw: bytes | memoryview, where: str) -> Tensor:
    """A tensor from its raw bytes (binary extension or gRPC ``raw_input_contents``), every size checked."""
    count = prod(shape)
    if datatype == "BYTES":
        values = split_bytes(raw, where)
        if len(values) != count:
            raise BadRequest(f"{where}: {len(values)} BYTES elements do not fill shape {shape}")
        return Tensor(name, datatype, shape, np.array(values, dtype=object) if values else np.empty(0, object))
    dtype = NUMPY_DTYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise BadRequest(
            f"{where}: {len(raw)} bytes of raw data, but shape {shape} of {datatype} needs {count * dtype.itemsize}"
        )
    return Tensor(name, datatype, shape, np.frombuffer(raw, dtype=dtype).reshape(shape))


def split_bytes(raw: bytes | memoryview, where: str) -> list[bytes]:
    """BYTES elements from their 4-byte little-endian length prefixes."""
    raw = memoryview(raw)
    out, pos, end = [], 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise BadRequest(f"{where}: BYTES data ends inside a 4-byte length prefix")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > end:
            raise BadRequest(f"{where}: a BYTES element claims {n} bytes, {end - pos} are left")
        out.append(bytes(raw[pos : pos + n]))
        pos += n
    return out


def to_raw(t: Tensor) -> bytes:
    """The tensor's raw bytes: the inverse of :func:`from_raw`."""
    if t.datatype == "BYTES":
        parts = []
        for v in t.data.ravel().tolist():
            b = v.encode() if isinstance(v, str) else bytes(v)
            parts += (struct.pack("<I", len(b)), b)
        return b"".join(parts)
    return np.ascontiguousarray(t.data, dtype=NUMPY_DTYPES[t.datatype]).tobytes()
