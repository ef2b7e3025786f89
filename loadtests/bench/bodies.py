"""The request bodies of `modelyard bench`, one file per protocol, all holding the same real test inputs:

* ``tfs``: TF Serving REST, ``{"instances": [{"ids": [...]}]}`` (text) or ``{"instances": [[13 numbers]]}``, one
  JSON body per line (wrk and k6 cycle through the lines);
* ``v2-rest``: KServe V2 / Open Inference Protocol REST, ``{"inputs": [{"name": "ids", "shape": [1, L],
  "datatype": "INT64", "data": [...]}]}`` (text) or one FP32 ``[1, 13]`` tensor, one JSON body per line;
* ``v2-grpc``: the same tensor as a serialized ``inference.ModelInferRequest`` with its bytes in
  ``raw_input_contents`` (as tritonclient sends it), length-prefixed records in one binary file, serialized once
  so the gRPC load generator only sends bytes.

V2 token ids are padded with 0 to one length ``L`` for every body. MLServer's adaptive batching merges requests
by concatenating their tensors' data and taking the first request's shape with the batch sizes summed
(``mlserver/batching/requests.py``), so requests of different lengths would be merged into a wrong tensor
("cannot reshape array of size 1010 into shape (6,165)"). ``L`` is the longest sequence, so nothing is cut and every
server sees the same reviews as the TF Serving bodies (0 is padding to modelyard and to the MLServer runtime).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

PROTOCOLS = ("tfs", "v2-rest", "v2-grpc")
SUFFIX = {"tfs": "tfs.jsonl", "v2-rest": "v2.jsonl", "v2-grpc": "v2.grpc"}


def _dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


def pad(ids: Sequence[Sequence[int]], length: int | None = None) -> np.ndarray:
    """Token id lists as one int64 ``[n, length]`` array, 0 after each list (``length``: the longest list)."""
    length = max(len(i) for i in ids) if length is None else length
    if any(len(i) > length for i in ids):
        raise ValueError(f"a sequence is longer than {length} ids")
    out = np.zeros((len(ids), length), dtype=np.int64)
    for r, i in enumerate(ids):
        out[r, : len(i)] = i
    return out


def tfs_body(x, text: bool) -> str:
    """One TF Serving body for one input: a list of token ids (``text``) or a row of numbers."""
    x = x.tolist() if isinstance(x, np.ndarray) else list(x)
    return _dumps({"instances": [{"ids": x}] if text else [x]})


def v2_tensor(x: np.ndarray, name: str) -> tuple[str, str, list[int], np.ndarray]:
    """(name, datatype, shape, data) of one input row: int64 ids -> INT64 ``[1, L]``, numbers -> FP32 ``[1, n]``."""
    x = np.asarray(x)
    if x.dtype.kind in "iu":
        return "ids", "INT64", [1, int(x.size)], x.astype("<i8").ravel()
    return name, "FP32", [1, int(x.size)], x.astype("<f4").ravel()


def v2_rest_body(x: np.ndarray, name: str = "features") -> str:
    tname, dt, shape, data = v2_tensor(x, name)
    return _dumps({"inputs": [{"name": tname, "shape": shape, "datatype": dt, "data": data.tolist()}]})


def v2_grpc_message(x: np.ndarray, model: str, name: str = "features") -> bytes:
    """A serialized ModelInferRequest for one input row, its tensor in ``raw_input_contents``."""
    from serving.protocols.proto import grpc_predict_v2_pb2 as pb

    tname, dt, shape, data = v2_tensor(x, name)
    req = pb.ModelInferRequest(model_name=model)
    req.inputs.add(name=tname, datatype=dt, shape=shape)
    req.raw_input_contents.append(data.tobytes())
    return req.SerializeToString()


def write_records(path: Path, records: Iterable[bytes]) -> Path:
    """Length-prefixed records (uint32 little-endian, then the bytes)."""
    with open(path, "wb") as f:
        for r in records:
            f.write(struct.pack("<I", len(r)))
            f.write(r)
    return path


def read_records(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    out, i = [], 0
    while i < len(data):
        if i + 4 > len(data):
            raise ValueError(f"{path}: truncated record header at byte {i}")
        (n,) = struct.unpack_from("<I", data, i)
        if i + 4 + n > len(data):
            raise ValueError(f"{path}: truncated record at byte {i}")
        out.append(data[i + 4 : i + 4 + n])
        i += 4 + n
    if not out:
        raise ValueError(f"{path}: no records")
    return out


def write_all(folder: Path, model: str, inputs: list, text: bool, input_name: str = "features") -> dict[str, Path]:
    """The three body files for ``inputs`` (token id lists when ``text``, else rows of numbers) in ``folder``:
    {protocol: path}."""
    if not inputs:
        raise ValueError("no inputs to write bodies for")
    folder.mkdir(parents=True, exist_ok=True)
    paths = {p: folder / f"bodies-{SUFFIX[p]}" for p in PROTOCOLS}
    paths["tfs"].write_text("\n".join(tfs_body(x, text) for x in inputs) + "\n")
    rows = list(pad(inputs)) if text else [np.asarray(x, dtype=np.float32) for x in inputs]
    paths["v2-rest"].write_text("\n".join(v2_rest_body(r, input_name) for r in rows) + "\n")
    write_records(paths["v2-grpc"], (v2_grpc_message(r, model, input_name) for r in rows))
    return paths


def sizes(paths: dict[str, Path]) -> dict[str, int]:
    """Mean body size in bytes per protocol (what each request carries, before HTTP or gRPC framing)."""
    out = {}
    for p, path in paths.items():
        if p == "v2-grpc":
            recs = read_records(path)
            out[p] = round(sum(map(len, recs)) / len(recs))
        else:
            lines = [l for l in Path(path).read_bytes().split(b"\n") if l]
            out[p] = round(sum(map(len, lines)) / len(lines))
    return out
