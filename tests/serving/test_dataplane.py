"""serving.dataplane in process, with its registry over a copy of the fixture repository (imdb versions 1 and 2,
boston) and no transport: answers as the Keras model's, routing by label, version and traffic split, mirroring to
the shadow, the per-model batch policy, what is counted, and the lifecycle (a refused version, an admin unload and
reload, a config change picked up by the next poll)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time

import numpy as np
import pytest
from anyio.from_thread import start_blocking_portal
from serving_helpers import reference

from modelyard.settings import Settings
from serving.dataplane import DataPlane
from serving.errors import NotFound
from serving.tensors import InferRequest, Tensor

CONFIG = """
models:
  imdb:
    version_policy: all
    labels: {stable: 1, canary: 2}
    traffic: [{version: 1, weight: 1}]
    shadow: {version: 2}
    batching: {max_batch_size: 8}
  boston:
    max_queue_size: 3
"""


def publish(src, model_dir, version: int, corrupt: str | None = None) -> None:
    """A version published as export publishes it: built beside, renamed into place."""
    stage = model_dir / f".staging-{version}"
    shutil.copytree(src, stage)
    m = json.loads((stage / "manifest.json").read_text())
    (stage / "manifest.json").write_text(json.dumps({**m, "version": version}))
    if corrupt:
        p = stage / corrupt
        p.write_bytes(p.read_bytes()[:-16] + b"\0" * 16)
    os.rename(stage, model_dir / str(version))


def make_repo(fixture_root, root):
    repo = root / "models"
    for name in ("imdb", "boston"):
        shutil.copytree(fixture_root / "repo" / name, repo / name)
    publish(fixture_root / "spare" / "imdb" / "1", repo / "imdb", 2)
    (root / "serving.yaml").write_text(CONFIG)
    return repo, root / "serving.yaml"


@contextlib.contextmanager
def running(repo, config):
    """A started data plane, every model loaded, on the event loop of a blocking portal."""
    dp = DataPlane(Settings(repo=repo, config=config, poll_interval_s=0, max_queue_delay_ms=1, access_log=False))
    with start_blocking_portal() as portal:
        portal.call(dp.start)
        deadline = time.monotonic() + 60
        while not dp.ready():
            assert time.monotonic() < deadline, "models did not load"
            time.sleep(0.02)
        yield portal, dp
        portal.call(dp.stop)


@pytest.fixture(scope="module")
def plane(fixture_root, tmp_path_factory):
    with running(*make_repo(fixture_root, tmp_path_factory.mktemp("dataplane"))) as (portal, dp):
        yield portal, dp


def texts(*values: str) -> InferRequest:
    return InferRequest([Tensor("text", "BYTES", [len(values)], np.array(values, dtype=object))])


def infer(plane, request, name="imdb", version=None):
    portal, dp = plane
    return portal.call(dp.infer, request, name, version, "rest")


def requests_total(dp, **labels) -> float:
    labels = {"route": "v2_infer", "protocol": "rest", **labels}
    return dp.metrics.registry.get_sample_value("modelyard_requests_total", labels) or 0.0


# ------------------------------------------------------------ answers and routing
def test_an_inference_answers_as_the_keras_model_and_is_counted(plane, fixture_root):
    ref = reference(fixture_root, "imdb")
    dp = plane[1]
    before = requests_total(dp, model="imdb", version="1", variant="onnx_fp32", status="200")
    resp = infer(plane, texts(*ref["texts"].tolist()), version="1")
    assert resp.model_version == "1" and resp.parameters["variant"] == "onnx_fp32"
    out = {t.name: t for t in resp.outputs}
    np.testing.assert_allclose(out["probability"].data, ref["y"], atol=1e-4)
    assert out["label"].data.tolist() == np.where(ref["y"][:, 0] >= 0.5, "positive", "negative").tolist()
    assert requests_total(dp, model="imdb", version="1", variant="onnx_fp32", status="200") == before + 1


def test_tabular_rows_answer_as_the_keras_model(plane, fixture_root):
    ref = reference(fixture_root, "boston")
    resp = infer(
        plane, InferRequest([Tensor("features", "FP32", list(ref["x"].shape), ref["x"].astype(np.float32))]), "boston"
    )
    np.testing.assert_allclose(resp.outputs[0].data, ref["y"], atol=1e-4)


def test_labels_versions_and_the_traffic_split_choose_the_version(plane):
    portal, dp = plane
    assert infer(plane, texts("good"), version="2").model_version == "2"
    assert dp.registry.resolve("imdb", label="canary")[0].version == 2
    assert dp.registry.resolve("imdb", label="stable")[0].version == 1
    # no version named: the split sends everything to version 1, although 2 is the latest
    assert {infer(plane, texts("good")).model_version for _ in range(5)} == {"1"}


def test_requests_are_mirrored_to_the_shadow_and_compared(plane):
    dp = plane[1]
    series = {"model": "imdb", "primary": "1/onnx_fp32", "candidate": "2/onnx_fp32"}

    def compared() -> float:
        get = dp.metrics.registry.get_sample_value
        return sum(get("modelyard_shadow_comparisons_total", {**series, "agreed": a}) or 0.0 for a in ("true", "false"))

    def settle() -> None:
        deadline = time.monotonic() + 10
        while dp.shadow._tasks:  # mirrors of earlier requests still running
            assert time.monotonic() < deadline, "the shadow comparison never finished"
            time.sleep(0.02)

    settle()
    before = compared()
    infer(plane, texts("a good movie", "an awful plot", "the film"))
    infer(plane, texts("good"), version="1")  # a request that names its version is not mirrored
    settle()
    assert compared() == before + 3  # each row of the mirrored request once


def test_each_model_batches_by_its_own_policy_over_the_servers(plane):
    dp = plane[1]
    imdb, boston = dp.model_config("imdb"), dp.model_config("boston")
    assert imdb["max_batch_size"] == 8 and boston["max_batch_size"] == 64  # the config's; the server's default
    assert imdb["dynamic_batching"] == {
        "max_queue_delay_microseconds": 1000,  # the settings' (max_queue_delay_ms=1)
        "default_queue_policy": {"max_queue_size": 1024},
    }
    assert boston["dynamic_batching"]["default_queue_policy"] == {"max_queue_size": 3}  # the flat key


def test_what_is_not_there_is_404_and_counted(plane):
    portal, dp = plane
    before = requests_total(dp, model="_unknown", version="", variant="", status="404")
    with pytest.raises(NotFound, match=r"unknown model 'bert' \(models: boston, imdb\)"):
        infer(plane, texts("good"), "bert")
    assert requests_total(dp, model="_unknown", version="", variant="", status="404") == before + 1
    with pytest.raises(NotFound, match=r"has no version 7 loaded \(loaded versions: 1, 2\)"):
        infer(plane, texts("good"), version="7")


def test_metadata_and_status_describe_what_is_loaded(plane):
    dp = plane[1]
    meta = dp.model_metadata("imdb")
    assert meta["versions"] == ["1", "2"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["parameters"]["labels_config"] == {"stable": 1, "canary": 2}
    assert [s["state"] for s in dp.version_status("imdb")["model_version_status"]] == ["AVAILABLE", "AVAILABLE"]
    assert {(r["name"], r.get("version"), r["state"]) for r in dp.repository_index()} == {
        ("boston", "1", "READY"),
        ("imdb", "1", "READY"),
        ("imdb", "2", "READY"),
    }


# ------------------------------------------------------------ lifecycle
def test_refused_unloaded_reloaded_and_a_config_change_at_the_next_poll(fixture_root, tmp_path):
    repo, config = make_repo(fixture_root, tmp_path)
    with running(repo, config) as (portal, dp):
        publish(fixture_root / "repo" / "imdb" / "1", repo / "imdb", 3, corrupt="onnx/fp32.onnx")
        portal.call(dp.registry.poll)
        status = {s["version"]: s for s in dp.version_status("imdb")["model_version_status"]}
        assert (
            status["3"]["state"] == "END"
            and "sha256 check against manifest failed" in status["3"]["status"]["error_message"]
            and str(repo) not in status["3"]["status"]["error_message"]
        )
        with pytest.raises(NotFound, match="version 3 is not available: it failed to load"):
            dp.registry.resolve("imdb", "3")
        assert infer((portal, dp), texts("good"), version="2").model_version == "2"  # the others keep serving

        portal.call(dp.registry.unload, "imdb", 2)
        with pytest.raises(NotFound, match=r"version 2 is not available: it failed to load \(unloaded by an admin"):
            dp.registry.resolve("imdb", label="canary")
        portal.call(dp.registry.poll)
        assert 2 not in dp.registry.models["imdb"].versions  # polling leaves it unloaded
        portal.call(dp.registry.reload, "imdb")
        assert infer((portal, dp), texts("good"), version="2").model_version == "2"

        mtime = config.stat().st_mtime_ns
        config.write_text(CONFIG.replace("traffic: [{version: 1, weight: 1}]", "traffic: [{version: 2, weight: 1}]"))
        os.utime(config, ns=(mtime + 10**9, mtime + 10**9))
        portal.call(dp.registry.poll)
        assert infer((portal, dp), texts("good")).model_version == "2"
