"""The one typed settings object. Every field can come from a ``MODELYARD_<FIELD>`` environment
variable; command-line flags override the environment (see :func:`load_settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from modelyard.onnxrun import CudaOptions


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore")

    repo: Path = Path("models")
    """Root of the model repository: ``<repo>/<name>/<version>/``."""
    data_dir: Path | None = None
    """Folder with the standard Keras dataset files; unset means download with ``keras.datasets``."""
    runs_dir: Path = Path("runs")
    """TensorBoard logs and checkpoints of training runs."""
    seed: int = 113

    # --- serving (``modelyard serve``; see serving/) ---
    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int = 8001
    """KServe V2 gRPC port, in the same process as REST (0: no gRPC endpoint)."""
    grpc_max_message_bytes: int = 8 * 1024 * 1024
    workers: Annotated[int, Field(ge=1)] | Literal["auto"] = 1
    """Server processes sharing the port, each with its own models and batcher (``auto``: the CPUs this process
    may use). More than one: a supervisor starts them, restarts one that dies, and sums their metrics."""
    worker_socket: Literal["reuseport", "shared"] = "reuseport"
    """How workers share the port: each its own ``SO_REUSEPORT`` socket (the kernel spreads connections evenly),
    or one socket bound by the supervisor that every worker accepts on (see README, Scale)."""
    """Largest gRPC message received or sent."""
    runtime: str = "onnx"
    """A registered serving runtime (serving/runtimes/__init__.py: onnx, tflite, savedmodel); checked at startup."""
    variant: str | None = None
    """Artifact to serve (a manifest variant name); unset: the runtime's default (onnx_fp32, tflite_fp32, savedmodel)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # --- onnxruntime's CUDAExecutionProvider (see modelyard/onnxrun.py: CudaOptions says why each default) ---
    cuda_device_id: int = 0
    cuda_mem_limit_mb: int = 0
    """Cap on onnxruntime's GPU memory arena per session (0: no cap)."""
    cuda_arena_extend_strategy: Literal["kSameAsRequested", "kNextPowerOfTwo"] = "kSameAsRequested"
    cuda_conv_algo_search: Literal["HEURISTIC", "EXHAUSTIVE", "DEFAULT"] = "HEURISTIC"
    cuda_use_tf32: bool = False
    cuda_graph: bool = False
    """Replay a captured CUDA graph per padded batch size (opt-in: every node must run on the GPU)."""
    config: Path | None = None
    """Serving config file (YAML or JSON): version policy, labels, traffic split, shadow, per model."""
    api_key: str | None = None
    """When set (or ``api_key_file``), every route except ``/v2/health/*`` and ``/metrics`` requires a key
    (``X-API-Key`` or ``Authorization: Bearer``; gRPC: the same metadata keys)."""
    api_key_file: Path | None = None
    """A file of API keys, one per line (``#`` comments): several keys are valid at once, for rotation."""
    public_metadata: bool = False
    """With a key set: leave model metadata, status, ``/docs`` and the OpenAPI schema open without one."""
    enable_admin: bool = False
    # --- Ray Serve (``modelyard serve --ray``; serving/ray_serve.py) ---
    ray: bool = False
    """Deploy the app to Ray Serve instead of serving in this process (``host``/``port``: Ray's HTTP proxy)."""
    ray_address: str | None = None
    """Ray cluster to join (``auto``: the one ``ray start`` runs on this machine, or ``HOST:PORT``); unset: start a
    local one bound to 127.0.0.1."""
    replicas: int = Field(default=1, ge=1)
    autoscale: str | None = None
    """``MIN:MAX`` replicas, scaled by Ray Serve on the requests in flight (instead of a fixed ``replicas``)."""
    ray_proxy_location: Literal["EveryNode", "HeadOnly"] = "EveryNode"
    """Where Ray runs its HTTP proxy: on every node (behind a load balancer), or on the head node only."""
    max_batch_size: int = 64
    max_queue_delay_ms: float = 0.0
    """How long a batch may wait for more requests after its first (0: never wait idle; requests that arrive
    while a batch runs form the next one)."""
    max_queue_size: int = 1024
    """Requests waiting per model before the server answers 503 with Retry-After. At least ``max_connections``
    by default: for models this small a refusal costs the server nearly as much as an answer (HTTP is most of
    both), so under a burst refusing what the queue could hold loses capacity; the connection cap bounds REST
    requests in flight, this bounds them with gRPC too."""
    inline_inference_max_ms: float = 0.5
    """Batches that recently ran faster than this run on the event loop, not in the inference thread, whose
    handoff would cost more than the model (0: always use the thread)."""
    max_body_bytes: int = 8 * 1024 * 1024
    max_instances: int = 256
    poll_interval_s: float = 5.0
    """How often the repository is polled for new versions (0 disables polling)."""
    threads: int = 0
    """Intra-op threads per model runtime (0: runtime default, at most 4)."""
    drain_timeout_s: float = 30.0
    access_log: bool = True
    access_log_sample: float = Field(default=1.0, ge=0, le=1)
    """Share of successful requests logged (errors always are); long paths are cut to 200 characters."""
    # --- the prediction log (serving/predlog; README "In the wild"): off unless a database URL is given ---
    prediction_log: str | None = None
    """``sqlite:///path`` or ``postgresql://user@host/db``: every answered request (input, output, version,
    arm, latency) is written there, off the request path; ground truth and audits join it."""
    log_sample_rate: float = Field(default=1.0, ge=0, le=1)
    """Share of requests the prediction log keeps (per model in the serving config: ``log_sample_rate``)."""
    prediction_log_retention_days: float = Field(default=30.0, gt=0)
    """Predictions older than this are deleted (hourly), with their ground truth."""
    prediction_log_queue_size: int = Field(default=10000, ge=1)
    """Requests waiting for the writer thread; past it, rows are dropped and counted, never a request slowed."""
    prediction_log_live_window_s: float = Field(default=86400.0, gt=0)
    """The sliding window of the live-quality gauges (``modelyard_live_accuracy``, ``modelyard_live_mae``): logged
    predictions this recent that have ground truth."""
    log_level: str = "info"
    header_timeout_s: float = Field(default=10.0, gt=0)
    """The whole request head must arrive within this many seconds of its first byte (of the connection's
    opening, for its first request); else 408 and close."""
    body_timeout_s: float = Field(default=10.0, gt=0)
    """Longest gap while a request body arrives; a body that stops arriving is answered 408 and closed."""
    keepalive_timeout_s: float = Field(default=5.0, gt=0)
    """Idle time allowed on a kept-alive connection between requests (behind a load balancer: more than its own)."""
    max_connections: int = Field(default=1000, ge=1)
    """Open HTTP connections; a request on a connection past the cap is answered 503 and the connection closed."""

    def worker_count(self) -> int:
        """``workers`` as a number: ``auto`` is the CPUs this process may run on."""
        import os

        return len(os.sched_getaffinity(0)) if self.workers == "auto" else self.workers

    def cuda_options(self) -> CudaOptions:
        """The CUDA provider settings as :class:`modelyard.onnxrun.CudaOptions`."""
        from modelyard.onnxrun import CudaOptions

        return CudaOptions(
            device_id=self.cuda_device_id,
            mem_limit_mb=self.cuda_mem_limit_mb,
            arena_extend_strategy=self.cuda_arena_extend_strategy,
            conv_algo_search=self.cuda_conv_algo_search,
            use_tf32=self.cuda_use_tf32,
            cuda_graph=self.cuda_graph,
        )


def load_settings(**flags: Any) -> Settings:
    """Settings from the environment, with every flag that was given (not None) taking precedence; a bad value
    is one :class:`~modelyard.errors.ModelyardError` naming the flag and its environment variable."""
    from pydantic import ValidationError

    from modelyard.errors import ModelyardError

    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        raise ModelyardError(
            f"--{field.replace('_', '-')} (env MODELYARD_{field.upper()}): {first['msg']}, got {first.get('input')!r}"
        ) from None
