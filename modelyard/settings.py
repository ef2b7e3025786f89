"""The one typed settings object. Every field can come from a ``MODELYARD_<FIELD>`` environment
variable; command-line flags override the environment (see :func:`load_settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


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
    runtime: Literal["onnx", "tflite", "savedmodel"] = "onnx"
    variant: str | None = None
    """Artifact to serve (a manifest variant name); unset: the runtime's default (onnx_fp32, tflite_fp32, savedmodel)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    config: Path | None = None
    """Serving config file (YAML or JSON): version policy, labels, traffic split, shadow, per model."""
    api_key: str | None = None
    """When set, every predict and admin route requires it (``X-API-Key`` or ``Authorization: Bearer``)."""
    enable_admin: bool = False
    max_batch_size: int = 64
    max_queue_delay_ms: float = 2.0
    max_queue_size: int = 256
    """Requests waiting per model before the server answers 503 with Retry-After."""
    max_body_bytes: int = 8 * 1024 * 1024
    max_instances: int = 256
    poll_interval_s: float = 5.0
    """How often the repository is polled for new versions (0 disables polling)."""
    threads: int = 0
    """Intra-op threads per model runtime (0: runtime default, at most 4)."""
    drain_timeout_s: float = 30.0
    access_log: bool = True
    log_level: str = "info"


def load_settings(**flags: Any) -> Settings:
    """Settings from the environment, with every flag that was given (not None) taking precedence."""
    return Settings(**{k: v for k, v in flags.items() if v is not None})
