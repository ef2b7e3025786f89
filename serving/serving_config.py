"""The serving config file (``--config``, YAML or JSON): per model, which versions to serve and how to route, mirror
and batch their requests. Every key is optional::

    models:
      imdb:
        version_policy: latest        # latest | all | specific
        num_versions: 1               # for latest
        versions: [1, 2]              # for specific
        variant: onnx_fp32            # default variant for this model
        labels: {stable: 1, canary: 2}
        traffic:                      # weighted split for requests that name no version or label
          - {version: 1, weight: 90}
          - {version: 2, weight: 10}  # or {variant: tflite_fp32, weight: 10}
        shadow: {version: 2}          # mirror requests to this candidate; answer from the primary
        batching:                     # each key left out: the server-wide flag's value
          max_batch_size: 64
          max_queue_delay_ms: 2
          max_queue_size: 256
        threshold: 0.5                # binary classifiers: probability from which the label is positive
        log_sample_rate: 0.1          # share of requests the prediction log keeps (--prediction-log)

``max_batch_size``, ``max_queue_delay_ms`` and ``max_queue_size`` may also be given beside ``version_policy``
(the spelling before ``batching``), not in both places.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelyard.errors import ModelyardError
from modelyard.tasks import DEFAULT_THRESHOLD
from serving.batching import BatchPolicy

log = logging.getLogger("serving.registry")  # the registry's log lines keep their logger name


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Target(_Cfg):
    version: int | None = Field(default=None, ge=1)
    """None: the latest loaded version."""
    variant: str | None = None
    """None: the model's default variant."""
    weight: float = Field(default=1.0, ge=0)


class BatchConfig(_Cfg):
    """One model's batch policy; each key left out takes the server-wide value (:meth:`BatchPolicy.from_settings`:
    ``--max-batch-size`` 64, ``--max-queue-delay-ms`` 0, ``--max-queue-size`` 1024 by default)."""

    max_batch_size: int | None = Field(default=None, ge=1)
    max_queue_delay_ms: float | None = Field(default=None, ge=0)
    max_queue_size: int | None = Field(default=None, ge=1)

    def over(self, server: BatchPolicy) -> BatchPolicy:
        """The policy this model's batchers run: its own keys, else the server's."""
        return dataclasses.replace(server, **self.model_dump(exclude_none=True))


class ModelConfig(_Cfg):
    version_policy: Literal["latest", "all", "specific"] = "latest"
    num_versions: int = Field(default=1, ge=1)
    versions: list[int] = []
    variant: str | None = None
    labels: dict[str, int] = {}
    traffic: list[Target] = []
    shadow: Target | None = None
    log_sample_rate: float | None = Field(default=None, ge=0, le=1)
    """Share of this model's requests the prediction log keeps (default: ``--log-sample-rate``)."""
    batching: BatchConfig = Field(default_factory=BatchConfig)
    threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0, lt=1)
    """Binary classifiers: the probability from which an input is labelled positive (labels on every protocol,
    the prediction metrics, the console and ``modelyard report`` use it)."""

    @model_validator(mode="before")
    @classmethod
    def _flat_batch_keys(cls, data):
        """``max_batch_size`` & co. beside the other keys (as configs written before ``batching`` say it)."""
        if not isinstance(data, dict):
            return data
        flat = {k: data[k] for k in BatchConfig.model_fields if k in data}
        if not flat:
            return data
        nested = data.get("batching")
        if nested is not None:
            raise ValueError(f"{', '.join(flat)}: give batch keys under 'batching' only, not beside it as well")
        return {**{k: v for k, v in data.items() if k not in flat}, "batching": flat}

    def targets(self) -> list[Target]:
        """The traffic split's targets and the shadow."""
        return [*self.traffic, *([self.shadow] if self.shadow else [])]


NO_CONFIG = ModelConfig()
"""The settings of a model the config file does not name (shared, read-only: the hot path must not build one)."""


class ServeConfig(_Cfg):
    models: dict[str, ModelConfig] = {}

    @classmethod
    def read(cls, path: Path | None) -> ServeConfig:
        if path is None:
            return cls()
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise ModelyardError(f"serving config {path}: {e.strerror}") from None
        yaml_file = Path(path).suffix in (".yaml", ".yml")
        try:
            if yaml_file:
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                data = json.loads(text)
        except Exception as e:  # noqa: BLE001
            raise ModelyardError(f"serving config {path}: not valid {'YAML' if yaml_file else 'JSON'}: {e}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            raise ModelyardError(f"serving config {path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None

    def model(self, name: str) -> ModelConfig:
        return self.models.get(name) or NO_CONFIG


class ConfigFile:
    """The serving config file, read again when its modification time changes. A change that does not read
    (bad YAML, an invalid key) is logged and the previous config kept."""

    def __init__(self, path: Path | None):
        self.path = path
        self.config = ServeConfig.read(path)
        self._sig = self._stat()

    def _stat(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns if self.path else None
        except OSError:
            return None

    def refresh(self) -> bool:
        """Whether a changed file was read into :attr:`config`."""
        sig = self._stat()
        if sig == self._sig:
            return False
        self._sig = sig
        try:
            self.config = ServeConfig.read(self.path)
        except ModelyardError as e:
            log.error("serving config not reloaded; keeping the previous one", extra={"reason": str(e)})
            return False
        log.info("serving config reloaded", extra={"config": str(self.path)})
        return True
