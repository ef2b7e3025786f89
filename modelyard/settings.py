"""The one typed settings object. Every field can come from a ``MODELYARD_<FIELD>`` environment
variable; command-line flags override the environment (see :func:`load_settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def load_settings(**flags: Any) -> Settings:
    """Settings from the environment, with every flag that was given (not None) taking precedence."""
    return Settings(**{k: v for k, v in flags.items() if v is not None})
