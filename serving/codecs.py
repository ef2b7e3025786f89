"""A model version's inputs and outputs, independent of the protocol that carried them.

Inputs people actually have: IMDB and Reuters take raw text (encoded by the same core encoder as training),
token ids, or the multi-hot vector; Boston takes its 13 features as one row or by name. :class:`ModelCodec`
turns each of these into the model's input (checked, with errors that name the field) and declares the one
canonical V2 input a client must send, listing the other accepted encodings as alternatives. The protocol
modules (``serving/protocols``) parse bodies and call these primitives; V2 tensors (REST JSON, REST binary,
gRPC) are checked against the declaration here, once for every transport.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelyard.encoding import IdRows, multi_hot
from modelyard.errors import EncodingError
from modelyard.manifest import Manifest, TabularPreprocessing
from modelyard.tasks import DEFAULT_THRESHOLD, Task, task_for
from serving.errors import BadRequest
from serving.tensors import InferRequest, RequestedOutput, Tensor

TEXT, IDS = "text", "ids"


@dataclass
class Decoded:
    x: np.ndarray | IdRows
    """The model input: float32 ``[N, width]``, or a text model's rows as token ids (the batcher writes them
    into its multi-hot batch)."""
    text_tokens: list[int] | None = None
    """Token count of each raw text given (drift statistics), when texts were sent."""
    text_oov: list[float] | None = None
    texts: list | None = None
    """The raw texts as sent (str, or UTF-8 bytes), for the prediction log."""


@dataclass(frozen=True)
class InputSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]
    """-1 for any size; the first dimension is the batch."""
    doc: str

    def metadata(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def numbers(value, what: str) -> np.ndarray:
    """JSON numbers as float32, finite, else a 400 naming ``what``."""
    try:
        arr = np.array(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{what}: must be numbers (a list of numbers, all rows the same length)") from None
    if arr.dtype.kind not in "iuf":  # strings, booleans, nulls, ragged rows, integers past 64 bits
        raise BadRequest(f"{what}: must be numbers (a list of numbers, all rows the same length)")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise BadRequest(f"{what}: must be finite numbers within float32's range")
    return arr


class ModelCodec:
    """Encoding and decoding for one model version, from its manifest."""

    def __init__(self, manifest: Manifest, version_dir: Path, threshold: float = DEFAULT_THRESHOLD):
        self.manifest = manifest
        self.input_name = manifest.inputs[0].name
        self.output_name = manifest.outputs[0].name
        self.output_width = manifest.outputs[0].shape[-1] or 1
        self.task: Task = task_for(manifest.task, manifest.labels, self.output_width, threshold)
        self.labels = self.task.labels
        p = manifest.preprocessing
        if isinstance(p, TabularPreprocessing):
            self.kind = "tabular"
            self.feature_names = list(p.feature_names)
            self.width = len(self.feature_names)
            self.encoder = None
            self.inputs = (
                InputSpec(
                    self.input_name,
                    "FP32",
                    (-1, self.width),
                    "one row of features per instance: " + ", ".join(self.feature_names),
                ),
            )
            self.alternatives = tuple(
                InputSpec(
                    f,
                    "FP32",
                    (-1,),
                    f"feature {f}, one value per instance; send all "
                    f"{self.width} feature tensors instead of '{self.input_name}'",
                )
                for f in self.feature_names
            )
        else:
            self.kind = "text"
            self.encoder = manifest.text_encoder(version_dir)
            self.width = p.num_words
            self.inputs = (InputSpec(TEXT, "BYTES", (-1,), "raw text (UTF-8), one string per instance"),)
            self.alternatives = (
                InputSpec(
                    IDS,
                    "INT64",
                    (-1, -1),
                    "Keras token ids per instance (start mark 1, 0 = padding); send instead of 'text'",
                ),
                InputSpec(
                    self.input_name,
                    "FP32",
                    (-1, self.width),
                    "the model's multi-hot input vector; send instead of 'text'",
                ),
            )
        self._specs = {s.name: s for s in (*self.inputs, *self.alternatives)}

    # ------------------------------------------------------------ primitives
    def example(self, n: int = 8) -> np.ndarray:
        """A representative batch for warm-up."""
        if self.kind == "text":
            return multi_hot([self.encoder.ids("a good movie")] * n, self.width)
        stats = self.manifest.preprocessing.feature_stats
        row = [stats[f].mean if f in stats else 0.0 for f in self.feature_names]
        return np.tile(np.asarray(row, np.float32), (n, 1))

    @staticmethod
    def check_count(n: int, what: str, max_instances: int) -> None:
        if n == 0:
            raise BadRequest(f"{what}: empty; send at least one instance")
        if n > max_instances:
            raise BadRequest(f"{what}: {n} instances, at most {max_instances} per request")

    def rows(self, arr: np.ndarray, what: str) -> np.ndarray:
        """Dense model input ``[N, width]`` (a single row may come flat)."""
        if arr.ndim == 1 and arr.shape[0] == self.width:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.width:
            what_rows = "multi-hot vector" if self.kind == "text" else "features " + ", ".join(self.feature_names)
            raise BadRequest(f"{what}: expected shape [N, {self.width}] ({what_rows}), got {list(arr.shape)}")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def texts(self, values, what: str) -> Decoded:
        """Raw texts (``str``, or UTF-8 ``bytes`` from a binary transport) -> token-id rows."""
        ids, tokens, oov = [], [], []
        enc = self.encoder
        for i, t in enumerate(values):
            if isinstance(t, bytes):
                try:
                    t = t.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise BadRequest(f"{what}[{i}]: text is not valid UTF-8 ({e.reason} at byte {e.start})") from None
            elif not isinstance(t, str):
                raise BadRequest(f"{what}[{i}]: must be a string of text, got {type(t).__name__}")
            row = enc.ids(t)
            ids.append(row)
            tokens.append(len(row) - 1)
            oov.append(sum(1 for w in row[1:] if w == enc.oov_char) / (len(row) - 1) if len(row) > 1 else 0.0)
        return Decoded(IdRows(ids, self.width), tokens, oov, values)

    def id_rows(self, seqs, what: str, suffix: str = "") -> IdRows:
        """Lists of JSON integers (or int arrays) -> token-id rows; ids past the vocabulary stand for OOV."""
        rows = []
        for i, seq in enumerate(seqs):
            # JSON integers arrive as int; a bool, float or string anywhere in the list is an error
            if not isinstance(seq, np.ndarray) and (not isinstance(seq, list) or not set(map(type, seq)) <= {int}):
                raise BadRequest(f"{what}[{i}]{suffix}: token ids must be a list of integers")
            try:
                rows.append(self.encoder.checked_ids(seq))
            except EncodingError as e:
                raise BadRequest(f"{what}[{i}]{suffix}: {e}") from None
        return IdRows(rows, self.width, self.encoder.oov_char)  # ids past the vocabulary: mapped per batch

    def check_feature_names(self, given, prefix: str) -> None:
        """Every feature named once, nothing else: otherwise one 400 that lists what is missing and unknown."""
        missing = [f for f in self.feature_names if f not in given]
        unknown = [str(k) for k in given if k not in self.feature_names]
        if missing or unknown:
            raise BadRequest(
                prefix
                + "; ".join(
                    ([f"missing {', '.join(missing)}"] if missing else [])
                    + ([f"unknown {', '.join(unknown)}"] if unknown else [])
                )
            )

    # ------------------------------------------------------------- V2 tensors
    def v2_metadata(self) -> tuple[list[dict], list[dict], dict]:
        """Declared inputs and outputs, and the alternative inputs (for ``parameters``)."""
        outputs = [{"name": self.output_name, "datatype": "FP32", "shape": [-1, self.output_width]}]
        outputs += [
            {"name": n, "datatype": dt, "shape": [-1, -1] if n.startswith("top_k") else [-1]}
            for n, dt, _ in self.task.extra_outputs
        ]
        alternatives = {
            "alternative_inputs": [{**s.metadata(), "doc": s.doc} for s in self.alternatives],
            "inputs_doc": {s.name: s.doc for s in self.inputs},
            "outputs_doc": {n: doc for n, _, doc in self.task.extra_outputs},
        }
        return [s.metadata() for s in self.inputs], outputs, alternatives

    def output_names(self) -> list[str]:
        return [self.output_name, *(n for n, _, _ in self.task.extra_outputs)]

    def check_outputs(self, requested: list[RequestedOutput] | None) -> None:
        if requested:
            known = self.output_names()
            for i, o in enumerate(requested):
                if o.name not in known:
                    raise BadRequest(f"outputs[{i}] '{o.name}': unknown output (outputs: {', '.join(known)})")

    def _checked(self, t: Tensor, i: int) -> InputSpec:
        """The tensor's declaration; a 400 naming the tensor when its name, datatype or shape does not fit."""
        where = f"inputs[{i}] '{t.name}'"
        spec = self._specs.get(t.name)
        if spec is None:
            declared = ", ".join(f"'{s.name}' {s.datatype} {list(s.shape)}" for s in self.inputs)
            other = ", ".join(f"'{s.name}'" for s in self.alternatives)
            raise BadRequest(
                f"{where}: unknown input; this model takes {declared} (or instead: {other}; see the model metadata)"
            )
        if t.datatype != spec.datatype:
            raise BadRequest(f"{where}: datatype {t.datatype}, but the input is declared {spec.datatype}")
        if len(t.shape) != len(spec.shape) or any(d != -1 and d != s for d, s in zip(spec.shape, t.shape)):
            raise BadRequest(f"{where}: shape {t.shape} does not match the declared shape {list(spec.shape)}")
        return spec

    def decode_v2(self, req: InferRequest, max_instances: int) -> Decoded:
        """A V2 request's input tensors -> the model input."""
        if not req.inputs:
            raise BadRequest("inputs: empty; send the model's input tensor (see the model metadata)")
        specs = [self._checked(t, i) for i, t in enumerate(req.inputs)]
        self.check_outputs(req.outputs)
        if self.kind == "tabular" and (len(req.inputs) > 1 or specs[0] in self.alternatives):
            return self._feature_tensors(req.inputs, max_instances)
        if len(req.inputs) != 1:
            names = ", ".join(f"'{t.name}'" for t in req.inputs)
            raise BadRequest(
                f"inputs: {len(req.inputs)} tensors ({names}); send exactly one of "
                + ", ".join(f"'{s}'" for s in self._specs)
            )
        t = req.inputs[0]
        where = f"inputs[0] '{t.name}'"
        self.check_count(t.shape[0], where, max_instances)
        if t.name == TEXT:
            return self.texts(t.data.ravel().tolist(), where)
        if t.name == IDS:
            if t.data.size and t.data.min() < 0:
                raise BadRequest(f"{where}: token ids must be non-negative")
            return Decoded(self.id_rows([row[row != 0] for row in t.data], where))
        return Decoded(self.rows(self._finite(t.data, where), where))

    def _feature_tensors(self, tensors: list[Tensor], max_instances: int) -> Decoded:
        """Boston as one tensor per feature, each [N]."""
        by_name = {t.name: t for t in tensors}
        if len(by_name) != len(tensors):
            raise BadRequest("inputs: a tensor name appears twice")
        self.check_feature_names(
            by_name, f"inputs: send '{self.input_name}' [N, {self.width}] alone, or one [N] tensor per feature; "
        )
        n = {by_name[f].shape[0] for f in self.feature_names}
        if len(n) != 1:
            raise BadRequest("inputs: every feature tensor must have the same length")
        self.check_count(n.pop(), "inputs", max_instances)
        cols = [self._finite(by_name[f].data, f"inputs '{f}'") for f in self.feature_names]
        return Decoded(np.stack(cols, axis=1).astype(np.float32))

    @staticmethod
    def _finite(arr: np.ndarray, where: str) -> np.ndarray:
        if not np.all(np.isfinite(arr)):
            raise BadRequest(f"{where}: must be finite numbers within float32's range")
        return arr

    def encode_v2(self, y: np.ndarray, requested: list[RequestedOutput] | None, top_k: int | None) -> list[Tensor]:
        """The raw output tensor and the task's extra outputs (labels, top k), as requested."""
        n = int(y.shape[0])
        outs = {self.output_name: Tensor(self.output_name, "FP32", list(y.shape), y)}
        for name, arr in self.task.extras(y, top_k).items():
            outs[name] = Tensor(name, "BYTES" if arr.dtype == object else "FP32", [n, *arr.shape[1:]], arr)
        if not requested:
            return list(outs.values())
        return [
            Tensor(o.name, outs[o.name].datatype, outs[o.name].shape, outs[o.name].data, o.parameters)
            for o in requested
        ]
