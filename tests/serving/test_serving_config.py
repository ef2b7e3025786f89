"""serving.serving_config in process: reading the config file, its errors, the per-model batch policy and the
reload of a changed file."""

from __future__ import annotations

import json
import os

import pytest

from modelyard.errors import ModelyardError
from modelyard.settings import Settings
from serving.batching import BatchPolicy
from serving.serving_config import NO_CONFIG, ConfigFile, ModelConfig, ServeConfig

SERVER = BatchPolicy(max_batch_size=64, max_queue_delay_ms=0.0, max_queue_size=1024, inline_max_ms=0.5)


def test_yaml_and_json_read_the_same(tmp_path):
    data = {
        "models": {
            "imdb": {
                "version_policy": "all",
                "labels": {"stable": 1},
                "traffic": [{"version": 1, "weight": 90}, {"variant": "tflite_fp32"}],
            }
        }
    }
    (tmp_path / "c.json").write_text(json.dumps(data))
    (tmp_path / "c.yaml").write_text(
        "models:\n  imdb:\n    version_policy: all\n    labels: {stable: 1}\n"
        "    traffic: [{version: 1, weight: 90}, {variant: tflite_fp32}]\n"
    )
    a, b = ServeConfig.read(tmp_path / "c.json"), ServeConfig.read(tmp_path / "c.yaml")
    assert a == b and a.model("imdb").traffic[1].weight == 1.0 and a.model("imdb").traffic[1].version is None


def test_no_file_and_unnamed_models_take_the_defaults(tmp_path):
    assert ServeConfig.read(None) == ServeConfig()
    cfg = ServeConfig.read(_write(tmp_path, "models:\n  imdb: {num_versions: 2}\n"))
    assert cfg.model("boston") is NO_CONFIG and cfg.model("imdb").num_versions == 2
    assert NO_CONFIG.version_policy == "latest" and NO_CONFIG.batching.over(SERVER) == SERVER


@pytest.mark.parametrize(
    "text, words",
    [
        ("models: [unclosed", "not valid YAML"),
        ("models:\n  imdb: {colour: red}\n", "models.imdb.colour: Extra inputs are not permitted"),
        ("models:\n  imdb: {version_policy: newest}\n", "models.imdb.version_policy: Input should be"),
        ("models:\n  imdb: {traffic: [{weight: -1}]}\n", "models.imdb.traffic.0.weight"),
        ("models:\n  imdb: {batching: {max_queue_size: 0}}\n", "models.imdb.batching.max_queue_size"),
        ("models:\n  imdb: {max_batch_size: 8, batching: {max_queue_size: 4}}\n", "under 'batching' only"),
    ],
)
def test_a_bad_config_is_one_error_naming_the_key(tmp_path, text, words):
    with pytest.raises(ModelyardError, match="serving config .*c.yaml: ") as e:
        ServeConfig.read(_write(tmp_path, text))
    assert words in str(e.value)


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ModelyardError, match="serving config .*nope.json: No such file"):
        ServeConfig.read(tmp_path / "nope.json")


# ------------------------------------------------------------ batch policy
def test_the_batch_policy_is_the_servers_unless_the_model_says_otherwise():
    nested = ModelConfig.model_validate({"batching": {"max_batch_size": 8, "max_queue_delay_ms": 0}})
    flat = ModelConfig.model_validate({"max_batch_size": 8, "max_queue_delay_ms": 0})  # the older spelling
    assert nested == flat
    assert nested.batching.over(SERVER) == BatchPolicy(8, 0.0, 1024, 0.5)  # 0 ms is a value, not "unset"
    assert ModelConfig().batching.over(SERVER) == SERVER


def test_the_servers_policy_comes_from_the_settings_flags_and_env(monkeypatch):
    for key in ("MAX_BATCH_SIZE", "MAX_QUEUE_DELAY_MS", "MAX_QUEUE_SIZE", "INLINE_INFERENCE_MAX_MS"):
        monkeypatch.delenv(f"MODELYARD_{key}", raising=False)
    assert BatchPolicy.from_settings(Settings()) == SERVER  # the documented defaults
    monkeypatch.setenv("MODELYARD_MAX_QUEUE_DELAY_MS", "2")
    monkeypatch.setenv("MODELYARD_INLINE_INFERENCE_MAX_MS", "0")
    assert BatchPolicy.from_settings(Settings(max_batch_size=16)) == BatchPolicy(16, 2.0, 1024, 0.0)


# ------------------------------------------------------------ reload
def test_a_changed_file_is_read_again_and_a_broken_change_keeps_the_last_good_one(tmp_path):
    path = _write(tmp_path, "models:\n  imdb: {threshold: 0.7}\n")
    watched = ConfigFile(path)
    assert not watched.refresh() and watched.config.model("imdb").threshold == 0.7
    _rewrite(path, "models:\n  imdb: {threshold: 0.2}\n")
    assert watched.refresh() and watched.config.model("imdb").threshold == 0.2
    _rewrite(path, "models:\n  imdb: {threshold: 2}\n")
    assert not watched.refresh() and watched.config.model("imdb").threshold == 0.2
    assert not watched.refresh()  # the broken file is not read again until it changes


def _write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def _rewrite(path, text: str) -> None:
    """Rewrite with a later modification time (coarse file system clocks could otherwise keep it)."""
    mtime = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))


def test_the_example_config_reads():
    """deploy/serving.example.yaml, which README points to, is a valid config with reuters' own batch policy."""
    from pathlib import Path

    example = ServeConfig.read(Path(__file__).resolve().parents[2] / "deploy" / "serving.example.yaml")
    assert example.model("reuters").batching.over(SERVER).max_batch_size == 32
    assert example.model("imdb").batching.over(SERVER) == SERVER
