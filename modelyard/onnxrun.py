"""The one way an ONNX file is opened: onnxruntime on CPU or CUDA, with the session options the server
runs (threads, no spinning, providers), for serving (``serving/runtimes/onnx.py``), export's validation and
the latency it writes into the manifest (``export/runtimes.py``), the benchmarks (``loadtests/bench``) and
the GPU check. numpy and onnxruntime only, imported lazily, so the benchmark runs where only those two are
installed.

onnxruntime falls back to CPU silently when the CUDA provider cannot load (no GPU, driver or CUDA
libraries), so :func:`open_session` checks the provider the session really got.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("modelyard.onnxrun")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


MAX_DEFAULT_THREADS = 4


def intra_op_threads(threads: int = 0) -> int:
    """``threads``, or for 0 the default of every runtime (ONNX and TFLite): one per CPU, at most
    :data:`MAX_DEFAULT_THREADS`; more threads only add synchronisation for models this small."""
    return threads or min(MAX_DEFAULT_THREADS, os.cpu_count() or 1)


def session_options(threads: int = 0):
    """The ``SessionOptions`` of every session: ``threads`` intra-op threads (:func:`intra_op_threads`), one
    inter-op thread (the graphs are a chain of layers) and no spinning: idle threads sleep instead of
    busy-waiting for the next call, which on a server would take the CPU the HTTP side needs."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads(threads)
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def describe_options(session) -> dict:
    """What a session runs with, as recorded beside a latency (the manifest's variant details)."""
    so = session.get_session_options()
    return {
        "provider": session.get_providers()[0],
        "intra_op_threads": so.intra_op_num_threads,
        "inter_op_threads": so.inter_op_num_threads,
        "spinning": so.get_session_config_entry("session.intra_op.allow_spinning") != "0",
    }


class CudaUnavailable(RuntimeError):
    """A CUDA session was asked for and onnxruntime cannot run one here."""


@dataclass(frozen=True)
class CudaOptions:
    """CUDAExecutionProvider options for small dense models (``MODELYARD_CUDA_*`` in the server)."""

    device_id: int = 0
    mem_limit_mb: int = 0
    """Cap on the session's GPU memory arena; 0: onnxruntime's default (no cap)."""
    arena_extend_strategy: str = "kSameAsRequested"
    """Grow the arena by what a batch needs (a few MB here), not to the next power of two."""
    conv_algo_search: str = "HEURISTIC"
    """The models have no convolutions: skip the exhaustive cuDNN search (the default) at load."""
    use_tf32: bool = False
    """onnxruntime's default (on) runs fp32 matmuls on TF32 tensor cores, which round inputs to a 10-bit
    mantissa: faster on Ampere and later, but fp32 answers then drift past their 1e-4 agreement with CPU."""
    cuda_graph: bool = False
    """Capture one CUDA graph per padded batch size (powers of two up to ``graph_max_rows``; larger
    batches run in chunks) and replay it: fewer kernel launches per call. Opt-in: graphs need fixed
    shapes and addresses, and a session whose nodes do not all run on the GPU fails to load."""
    graph_max_rows: int = 512

    def provider_options(self) -> dict[str, str]:
        opts = {
            "device_id": str(self.device_id),
            "arena_extend_strategy": self.arena_extend_strategy,
            "cudnn_conv_algo_search": self.conv_algo_search,
            "use_tf32": str(int(self.use_tf32)),
            "enable_cuda_graph": str(int(self.cuda_graph)),
        }
        if self.mem_limit_mb:
            opts["gpu_mem_limit"] = str(self.mem_limit_mb * 1024 * 1024)
        return opts


_PRELOADED: list[str] | None = None


def preload_cuda_libraries() -> list[str]:
    """``onnxruntime.preload_dlls()``, once per process: loads the CUDA and cuDNN libraries installed as
    ``nvidia-*`` Python packages, which the CUDA provider would otherwise find only on the loader path.
    It prints what it cannot load instead of raising; those lines are returned (and logged at debug)."""
    global _PRELOADED
    if _PRELOADED is None:
        import onnxruntime as ort

        out = io.StringIO()
        with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ort.preload_dlls()
            except Exception as e:  # noqa: BLE001 - a failed preload only means the provider may not load
                print(f"onnxruntime.preload_dlls: {e}")
        _PRELOADED = [line for line in out.getvalue().splitlines() if line.strip()]
        _PRELOADED += [str(w.message) for w in caught]
        for line in _PRELOADED:
            log.debug("CUDA library preload: %s", line)
    return _PRELOADED


def open_session(path: Path | str, device: str = "cpu", threads: int = 0, cuda: CudaOptions | None = None):
    """An ``InferenceSession`` on ``device`` ("cpu" or "cuda") with :func:`session_options` (``threads``: 0
    is the runtimes' default). For "cuda" it raises :class:`CudaUnavailable` when onnxruntime fell back to
    CPU or failed to create the session."""
    import onnxruntime as ort

    opts = session_options(threads)
    if device != "cuda":
        return ort.InferenceSession(str(path), sess_options=opts, providers=[CPU])
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    preload_cuda_libraries()
    try:
        sess = ort.InferenceSession(
            str(path), sess_options=opts, providers=[(CUDA, (cuda or CudaOptions()).provider_options()), CPU]
        )
    except Exception as e:  # noqa: BLE001 - e.g. no device visible: the CUDA provider throws, then its retry does
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CudaUnavailable(f"onnxruntime cannot create a CUDA session: {first}") from e
    if sess.get_providers()[0] != CUDA:
        missing = preload_cuda_libraries()[:1]
        raise CudaUnavailable(
            "CUDAExecutionProvider fell back to CPU (no CUDA device, driver or CUDA "
            f"libraries{': ' + missing[0] if missing else ''})"
        )
    return sess


class Predictor:
    """One session's first input -> first output on float32 batches.

    On CPU: ``session.run``. On CUDA: IO binding, the input bound from numpy and the output left on the
    GPU, then copied back; with ``cuda_graph``, fixed device buffers per padded batch size instead. Not
    thread-safe: the bindings are reused, so one caller at a time (the server's batcher guarantees it).
    ``io_binding`` forces the bound path on (a CPU session, to test it) or off (to measure without it).
    """

    def __init__(self, session, cuda: CudaOptions | None = None, io_binding: bool | None = None):
        self.session = session
        self.provider = session.get_providers()[0]
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self._outputs = [self.output_name]
        self._device = "cuda" if self.provider == CUDA else "cpu"
        self._cuda = cuda or CudaOptions()
        self.io_binding = self.provider == CUDA if io_binding is None else io_binding
        if self.provider == CUDA and self._cuda.cuda_graph and not self.io_binding:
            raise ValueError(
                "a session with CUDA graphs must run through IO binding: replaying a graph "
                "reads the addresses it was captured with"
            )
        self.cuda_graph = self.io_binding and self._cuda.cuda_graph
        self._binding = session.io_binding() if self.io_binding else None
        self._graphs: dict[int, _Graph] = {}
        self.run = self._graph_run if self.cuda_graph else self._bound_run if self.io_binding else self._plain_run
        """``run(x) -> y``: the model's first output for a float32 batch."""

    def _plain_run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(self._outputs, {self.input_name: x})[0]

    def _bound_run(self, x: np.ndarray) -> np.ndarray:
        b = self._binding
        b.bind_cpu_input(self.input_name, x)
        # Bound again each call: a kept output would be reused as a preallocated buffer of the old shape.
        b.bind_output(self.output_name, self._device, self._cuda.device_id)
        self.session.run_with_iobinding(b)
        return b.copy_outputs_to_cpu()[0]

    def _graph_run(self, x: np.ndarray) -> np.ndarray:
        cap = self._cuda.graph_max_rows
        if len(x) > cap:
            return np.concatenate([self._graph_run(x[i : i + cap]) for i in range(0, len(x), cap)])
        rows = 1 << max(0, len(x) - 1).bit_length()
        g = self._graphs.get(rows)
        if g is None:
            g = self._graphs[rows] = _Graph(self, rows)
        return g.run(x)

    def warmup(self, x: np.ndarray) -> None:
        """Run every padded batch size once, so no request pays for a graph capture (no-op without graphs)."""
        if self.cuda_graph:
            rows = 1
            while rows <= self._cuda.graph_max_rows:
                self.run(x[np.arange(rows) % len(x)])
                rows *= 2


class _Graph:
    """Input and output buffers of one padded batch size at fixed device addresses, bound once, and the
    run option that names its CUDA graph (``gpu_graph_id``; 0 is onnxruntime's own, -1 disables)."""

    def __init__(self, p: Predictor, rows: int):
        import onnxruntime as ort

        width, out_width = p.session.get_inputs()[0].shape[1], p.session.get_outputs()[0].shape[1]
        if not (isinstance(width, int) and isinstance(out_width, int)):
            raise ValueError(
                f"CUDA graphs need a fixed input and output width; the model has [N, {width}] -> [N, {out_width}]"
            )
        dev, dev_id = p._device, p._cuda.device_id
        self.session = p.session
        self.host = np.zeros((rows, width), np.float32)
        self.x = ort.OrtValue.ortvalue_from_shape_and_type([rows, width], np.float32, dev, dev_id)
        self.y = ort.OrtValue.ortvalue_from_shape_and_type([rows, out_width], np.float32, dev, dev_id)
        self.binding = p.session.io_binding()
        self.binding.bind_ortvalue_input(p.input_name, self.x)
        self.binding.bind_ortvalue_output(p.output_name, self.y)
        self.options = ort.RunOptions()
        self.options.add_run_config_entry("gpu_graph_id", str(rows.bit_length()))

    def run(self, x: np.ndarray) -> np.ndarray:
        # Rows past len(x) keep an earlier batch's rows: valid inputs whose outputs are dropped.
        self.host[: len(x)] = x
        self.x.update_inplace(self.host)
        self.session.run_with_iobinding(self.binding, self.options)
        return self.binding.copy_outputs_to_cpu()[0][: len(x)]
