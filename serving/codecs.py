"""Request bodies -> model input, model output -> answers, for both protocols.

Inputs people actually have: IMDB and Reuters take raw text (encoded by the same core encoder as
training), token ids, or the multi-hot vector; Boston takes the 13 features by name or as a list.
Answers carry label and probability (IMDB), top-k topics (Reuters) or price in $1000s (Boston), plus
the raw output. Every error names the field and the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy as np

from modelyard.encoding import IdRows, features_to_rows, multi_hot
from modelyard.errors import EncodingError
from modelyard.manifest import Manifest, TabularPreprocessing
from serving.errors import BadRequest

TEXT_KEYS = ("text", "ids", "multi_hot")
V2_FLOAT = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16}
V2_INT = {"INT64": np.int64, "INT32": np.int32, "INT16": np.int16, "INT8": np.int8,
          "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64}
V2_TYPES = {"float32": "FP32", "int64": "INT64", "int32": "INT32", "int8": "INT8", "uint8": "UINT8", "string": "BYTES"}


@dataclass
class Decoded:
    x: np.ndarray | IdRows
    """The model input: float32 ``[N, width]``, or a text model's rows as token ids (the batcher writes them
    into its multi-hot batch)."""
    text_tokens: list[int] | None = None
    """Token count of each raw text given (drift statistics), when texts were sent."""
    text_oov: list[float] | None = None


def _numbers(value, what: str, dtype=np.float32) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise BadRequest(f"{what}: must be numbers (a list of numbers, all rows the same length)") from None
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise BadRequest(f"{what}: must be finite numbers")
    return arr


class ModelCodec:
    """Encoding and decoding for one model version, from its manifest."""

    def __init__(self, manifest: Manifest, version_dir: Path, top_k: int = 3):
        self.manifest = manifest
        self.task = manifest.task
        self.top_k = top_k
        self.input_name = manifest.inputs[0].name
        self.output_name = manifest.outputs[0].name
        self.labels = manifest.labels
        p = manifest.preprocessing
        if isinstance(p, TabularPreprocessing):
            self.kind = "tabular"
            self.feature_names = list(p.feature_names)
            self.width = len(self.feature_names)
            self.encoder = None
        else:
            self.kind = "text"
            self.encoder = manifest.text_encoder(version_dir)
            self.width = p.num_words
        if self.task == "binary_classification" and not self.labels:
            self.labels = ["negative", "positive"]

    # ----------------------------------------------------------------- helpers
    def example(self, n: int = 8) -> np.ndarray:
        """A representative batch for warm-up."""
        if self.kind == "text":
            return multi_hot([self.encoder.ids("a good movie")] * n, self.width)
        stats = self.manifest.preprocessing.feature_stats
        row = [stats[f].mean if f in stats else 0.0 for f in self.feature_names]
        return np.tile(np.asarray(row, np.float32), (n, 1))

    def _check_count(self, n: int, what: str, max_instances: int) -> None:
        if n == 0:
            raise BadRequest(f"{what}: empty list; send at least one instance")
        if n > max_instances:
            raise BadRequest(f"{what}: {n} instances, at most {max_instances} per request")

    def _rows(self, arr: np.ndarray, what: str) -> np.ndarray:
        if arr.ndim == 1 and arr.shape[0] == self.width:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.width:
            raise BadRequest(f"{what}: expected shape [N, {self.width}] "
                             f"({'multi-hot vector' if self.kind == 'text' else 'features ' + ', '.join(self.feature_names)}), "
                             f"got {list(arr.shape)}")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def _texts(self, texts: list, what: str) -> Decoded:
        ids, tokens, oov = [], [], []
        enc = self.encoder
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise BadRequest(f"{what}[{i}]: must be a string of text, got {type(t).__name__}")
            row = enc.ids(t)
            ids.append(row)
            tokens.append(len(row) - 1)
            oov.append(sum(1 for w in row[1:] if w == enc.oov_char) / (len(row) - 1) if len(row) > 1 else 0.0)
        return Decoded(IdRows(ids, self.width), tokens, oov)

    def _ids(self, seqs, what: str, suffix: str = "") -> IdRows:
        rows = []
        for i, seq in enumerate(seqs):
            # JSON integers arrive as int; a bool, float or string anywhere in the list is an error
            if not isinstance(seq, list) or not set(map(type, seq)) <= {int}:
                raise BadRequest(f"{what}[{i}]{suffix}: token ids must be a list of integers")
            try:
                rows.append(self.encoder.clip_ids(seq))
            except EncodingError as e:
                raise BadRequest(f"{what}[{i}]{suffix}: {e}") from None
        return IdRows(rows, self.width)

    # ------------------------------------------------------------ TF Serving
    def decode_tfs(self, body: Mapping, max_instances: int) -> tuple[Decoded, bool]:
        """``{"instances": [...]}`` (row format) or ``{"inputs": ...}`` (columnar). Returns (input, columnar)."""
        if not isinstance(body, Mapping):
            raise BadRequest("body: must be a JSON object with 'instances' or 'inputs'")
        has_i, has_c = "instances" in body, "inputs" in body
        if has_i == has_c:
            raise BadRequest("body: give exactly one of 'instances' (row format) or 'inputs' (columnar format)")
        if has_i:
            inst = body["instances"]
            if not isinstance(inst, list):
                raise BadRequest("instances: must be a list")
            self._check_count(len(inst), "instances", max_instances)
            return self._decode_instances(inst, "instances"), False
        cols = body["inputs"]
        if isinstance(cols, list):
            self._check_count(len(cols), "inputs", max_instances)
            return self._decode_instances(cols, "inputs"), True
        if isinstance(cols, str) and self.kind == "text":
            return self._texts([cols], "inputs"), True
        if not isinstance(cols, Mapping):
            raise BadRequest("inputs: must be a list or an object of named columns")
        return self._decode_columns(cols, max_instances), True

    def _decode_instances(self, inst: list, what: str) -> Decoded:
        first = inst[0]
        if self.kind == "tabular":
            try:
                rows = features_to_rows([i["features"] if isinstance(i, Mapping) and set(i) == {"features"} else i
                                         for i in inst], self.feature_names)
            except EncodingError as e:
                raise BadRequest(f"{what}: {e}".replace("instance ", f"{what}[", 1).replace(":", "]:", 1)
                                 if str(e).startswith("instance ") else f"{what}: {e}") from None
            except TypeError:
                raise BadRequest(f"{what}: each instance must be an object of named features or a list of "
                                 f"{self.width} numbers") from None
            return Decoded(rows)
        # text models: fast path for all multi-hot rows, else per instance
        if isinstance(first, list) and all(isinstance(i, list) for i in inst):
            return Decoded(self._rows(_numbers(inst, what), what))
        if all(isinstance(i, str) for i in inst):
            return self._texts(inst, what)
        if all(isinstance(i, Mapping) and len(i) == 1 and "ids" in i for i in inst):
            return Decoded(self._ids([i["ids"] for i in inst], what, ".ids"))
        parts, tokens, oov = [], [], []
        for r, i in enumerate(inst):
            where = f"{what}[{r}]"
            if isinstance(i, str):
                d = self._texts([i], where)
                tokens += d.text_tokens
                oov += d.text_oov
                parts.append(d.x)
            elif isinstance(i, list):
                parts.append(self._rows(_numbers(i, where), where))
            elif isinstance(i, Mapping):
                keys = [k for k in i if k in TEXT_KEYS or k == self.input_name]
                if len(i) != 1 or len(keys) != 1:
                    raise BadRequest(f"{where}: expected one key of {', '.join(TEXT_KEYS)}; got {', '.join(map(str, i)) or 'none'}")
                k = keys[0]
                if k == "text":
                    d = self._texts([i[k]], where + ".text")
                    tokens += d.text_tokens
                    oov += d.text_oov
                    parts.append(d.x)
                elif k == "ids":
                    parts.append(self._ids([i[k]], where + ".ids"))
                else:
                    parts.append(self._rows(_numbers(i[k], f"{where}.{k}"), f"{where}.{k}"))
            else:
                raise BadRequest(f"{where}: must be text (a string), {{\"ids\": [...]}} or a multi-hot list, "
                                 f"got {type(i).__name__}")
        return Decoded(np.concatenate([p.dense() if isinstance(p, IdRows) else p for p in parts]), tokens or None,
                       oov or None)

    def _check_feature_names(self, given, prefix: str) -> None:
        """Every feature named once, nothing else: otherwise one 400 that lists what is missing and unknown."""
        missing = [f for f in self.feature_names if f not in given]
        unknown = [str(k) for k in given if k not in self.feature_names]
        if missing or unknown:
            raise BadRequest(prefix + "; ".join(([f"missing {', '.join(missing)}"] if missing else []) +
                                                ([f"unknown {', '.join(unknown)}"] if unknown else [])))

    def _decode_columns(self, cols: Mapping, max_instances: int) -> Decoded:
        if self.kind == "tabular":
            if set(cols) <= {"features", self.input_name} and len(cols) == 1:
                k = next(iter(cols))
                arr = self._rows(_numbers(cols[k], f"inputs.{k}"), f"inputs.{k}")
                self._check_count(len(arr), f"inputs.{k}", max_instances)
                return Decoded(arr)
            self._check_feature_names(cols, "inputs: ")
            columns = []
            for f in self.feature_names:
                c = _numbers(cols[f], f"inputs.{f}").reshape(-1)
                columns.append(c)
            n = {len(c) for c in columns}
            if len(n) != 1:
                raise BadRequest("inputs: every feature column must have the same length")
            self._check_count(n.pop(), "inputs", max_instances)
            return Decoded(np.stack(columns, axis=1).astype(np.float32))
        if len(cols) != 1:
            raise BadRequest(f"inputs: expected one of {', '.join(TEXT_KEYS)}; got {', '.join(map(str, cols)) or 'none'}")
        k, v = next(iter(cols.items()))
        if k not in TEXT_KEYS and k != self.input_name:
            raise BadRequest(f"inputs: unknown input '{k}'; expected one of {', '.join(TEXT_KEYS)}")
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list):
            raise BadRequest(f"inputs.{k}: must be a list")
        self._check_count(len(v), f"inputs.{k}", max_instances)
        if k == "text":
            return self._texts(v, f"inputs.{k}")
        if k == "ids":
            if v and not isinstance(v[0], list):
                v = [v]
            return Decoded(self._ids(v, f"inputs.{k}"))
        return Decoded(self._rows(_numbers(v, f"inputs.{k}"), f"inputs.{k}"))

    def encode_tfs(self, y: np.ndarray, columnar: bool, top_k: int | None = None) -> list | dict:
        rows = y.tolist()
        if self.task == "binary_classification":
            neg, pos = self.labels[0], self.labels[1]
            out = []
            for r in rows:
                p = r[0]
                out.append({"label": pos if p >= 0.5 else neg, "probability": p if p >= 0.5 else 1.0 - p,
                            "scores": {neg: 1.0 - p, pos: p}, "output": r})
        elif self.task == "multiclass_classification":
            k = max(1, min(top_k or self.top_k, y.shape[1]))
            idx = np.argsort(-y, axis=1)[:, :k].tolist()
            labels = self.labels or [str(i) for i in range(y.shape[1])]
            out = []
            for r, ix in zip(rows, idx):
                top = [{"label": labels[j], "probability": r[j]} for j in ix]
                out.append({"label": top[0]["label"], "probability": top[0]["probability"], "top_k": top,
                            "output": r})
        else:
            out = [{self.output_name: r[0], "output": r} for r in rows]
        if not columnar:
            return out
        return {key: [o[key] for o in out] for key in out[0]}

    # ------------------------------------------------------------- KServe V2
    def v2_metadata_io(self) -> tuple[list[dict], list[dict]]:
        if self.kind == "text":
            inputs = [{"name": "text", "datatype": "BYTES", "shape": [-1]},
                      {"name": "ids", "datatype": "INT64", "shape": [-1, -1]},
                      {"name": self.input_name, "datatype": "FP32", "shape": [-1, self.width]}]
        else:
            inputs = [{"name": self.input_name, "datatype": "FP32", "shape": [-1, self.width]}] + \
                     [{"name": f, "datatype": "FP32", "shape": [-1]} for f in self.feature_names]
        outputs = [{"name": self.output_name, "datatype": "FP32", "shape": [-1, self.manifest.outputs[0].shape[-1]]}]
        if self.task != "regression":
            outputs += [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                        {"name": "label_probability", "datatype": "FP32", "shape": [-1]}]
        if self.task == "multiclass_classification":
            outputs += [{"name": "top_k_labels", "datatype": "BYTES", "shape": [-1, -1]},
                        {"name": "top_k_probabilities", "datatype": "FP32", "shape": [-1, -1]}]
        return inputs, outputs

    @staticmethod
    def _v2_tensor(t, i: int) -> tuple[str, str, list[int], object]:
        where = f"inputs[{i}]"
        if not isinstance(t, Mapping):
            raise BadRequest(f"{where}: must be an object with name, shape, datatype and data")
        for key in ("name", "shape", "datatype", "data"):
            if key not in t:
                raise BadRequest(f"{where}.{key}: field required")
        name, shape, dt, data = t["name"], t["shape"], t["datatype"], t["data"]
        if not isinstance(name, str):
            raise BadRequest(f"{where}.name: must be a string")
        if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                  for s in shape):
            raise BadRequest(f"{where}.shape: must be a list of non-negative integers")
        if not isinstance(dt, str) or dt not in (*V2_FLOAT, *V2_INT, "BYTES", "BOOL"):
            raise BadRequest(f"{where}.datatype: unknown datatype {dt!r} (use FP32, INT64 or BYTES)")
        if not isinstance(data, list):
            data = [data]
        return name, dt, shape, data

    def _v2_array(self, dt: str, shape: list[int], data, where: str) -> np.ndarray:
        dtype = V2_FLOAT.get(dt) or V2_INT.get(dt) or (np.bool_ if dt == "BOOL" else None)
        if dtype is None:
            raise BadRequest(f"{where}.datatype: {dt} is not a numeric type here")
        arr = _numbers(data, f"{where}.data", np.float64 if dt in V2_FLOAT else np.int64 if dt in V2_INT else dtype)
        if arr.size != prod(shape):
            raise BadRequest(f"{where}.data: {arr.size} values do not fill shape {shape}")
        if dt.startswith("UINT") and arr.size and arr.min() < 0:
            raise BadRequest(f"{where}.data: negative values in an unsigned tensor")
        return arr.reshape(shape)

    def decode_v2(self, body: Mapping, max_instances: int) -> Decoded:
        if not isinstance(body, Mapping):
            raise BadRequest("body: must be a JSON object with 'inputs'")
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise BadRequest("inputs: field required; must be a list of tensors")
        if not inputs:
            raise BadRequest("inputs: empty list; send at least one tensor")
        tensors = [self._v2_tensor(t, i) for i, t in enumerate(inputs)]
        if self.kind == "tabular":
            if len(tensors) == 1:
                name, dt, shape, data = tensors[0]
                arr = self._v2_array(dt, shape, data, "inputs[0]")
                x = self._rows(arr.astype(np.float32), "inputs[0].shape")
            else:
                by_name = {t[0]: (i, t) for i, t in enumerate(tensors)}
                self._check_feature_names(by_name, "inputs: one tensor [N, 13] or one tensor per feature; ")
                cols = []
                for f in self.feature_names:
                    i, (_, dt, shape, data) = by_name[f]
                    cols.append(self._v2_array(dt, shape, data, f"inputs[{i}]").reshape(-1))
                if len({len(c) for c in cols}) != 1:
                    raise BadRequest("inputs: every feature tensor must have the same length")
                x = np.stack(cols, axis=1).astype(np.float32)
            if not np.all(np.isfinite(x)):
                raise BadRequest("inputs[0].data: must be finite numbers")
            self._check_count(len(x), "inputs[0]", max_instances)
            return Decoded(x)
        if len(tensors) != 1:
            raise BadRequest(f"inputs: text models take one tensor (text BYTES, ids INT64 or "
                             f"{self.input_name} FP32), got {len(tensors)}")
        name, dt, shape, data = tensors[0]
        if dt == "BYTES":
            if len(data) != prod(shape):
                raise BadRequest(f"inputs[0].data: {len(data)} values do not fill shape {shape}")
            if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
                raise BadRequest(f"inputs[0].shape: text is one string per row, shape [N] or [N, 1]; got {shape}")
            flat = data if all(isinstance(d, str) for d in data) else list(np.asarray(data, dtype=object).ravel())
            self._check_count(len(flat), "inputs[0]", max_instances)
            return self._texts(flat, "inputs[0].data")
        arr = self._v2_array(dt, shape, data, "inputs[0]")
        if dt in V2_INT:
            if arr.ndim == 1:
                arr = arr[None, :]
            if arr.ndim != 2:
                raise BadRequest(f"inputs[0].shape: token ids are [N, L] (0 = padding); got {shape}")
            self._check_count(len(arr), "inputs[0]", max_instances)
            if arr.size and arr.min() < 0:
                raise BadRequest("inputs[0].data: token ids must be non-negative")
            return Decoded(self._ids([[int(v) for v in row if v != 0] for row in arr.tolist()], "inputs[0].data"))
        x = self._rows(arr, "inputs[0].shape")
        self._check_count(len(x), "inputs[0]", max_instances)
        return Decoded(x)

    def encode_v2(self, y: np.ndarray, requested: list[str] | None = None, top_k: int | None = None) -> list[dict]:
        n = int(y.shape[0])
        outs = {self.output_name: {"name": self.output_name, "datatype": "FP32", "shape": list(y.shape),
                                   "data": y.ravel().tolist()}}
        if self.task == "binary_classification":
            p = y[:, 0]
            win = p >= 0.5
            outs["label"] = {"name": "label", "datatype": "BYTES", "shape": [n],
                             "data": [self.labels[1] if w else self.labels[0] for w in win.tolist()]}
            outs["label_probability"] = {"name": "label_probability", "datatype": "FP32", "shape": [n],
                                   "data": np.where(win, p, 1.0 - p).tolist()}
        elif self.task == "multiclass_classification":
            labels = self.labels or [str(i) for i in range(y.shape[1])]
            k = max(1, min(top_k or self.top_k, y.shape[1]))
            idx = np.argsort(-y, axis=1)[:, :k]
            probs = np.take_along_axis(y, idx, axis=1)
            outs["label"] = {"name": "label", "datatype": "BYTES", "shape": [n],
                             "data": [labels[i] for i in idx[:, 0].tolist()]}
            outs["label_probability"] = {"name": "label_probability", "datatype": "FP32", "shape": [n],
                                   "data": probs[:, 0].tolist()}
            outs["top_k_labels"] = {"name": "top_k_labels", "datatype": "BYTES", "shape": [n, k],
                                    "data": [labels[i] for i in idx.ravel().tolist()]}
            outs["top_k_probabilities"] = {"name": "top_k_probabilities", "datatype": "FP32", "shape": [n, k],
                                           "data": probs.ravel().tolist()}
        if requested:
            unknown = [r for r in requested if r not in outs]
            if unknown:
                raise BadRequest(f"outputs: unknown output {', '.join(unknown)} (outputs: {', '.join(outs)})")
            return [outs[r] for r in requested]
        return list(outs.values())
