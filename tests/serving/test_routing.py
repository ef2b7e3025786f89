"""serving.routing in process: which versions a model loads and which servable answers, as pure functions of a
model's state and config. Servables are stand-ins (strings): routing only picks them."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from serving import routing
from serving.errors import BadRequest, NotFound, Unavailable
from serving.servables import ModelState
from serving.serving_config import ModelConfig

DEFAULT = "onnx_fp32"


def state(config: dict | None = None, loaded: dict[int, list[str]] | None = None, **kw) -> ModelState:
    """A model whose versions hold ``"<version>/<variant>"`` for each variant loaded."""
    st = ModelState("imdb", ModelConfig.model_validate(config or {}), **kw)
    st.versions = {v: {n: f"{v}/{n}" for n in names} for v, names in (loaded or {}).items()}
    return st


def first(population, weights):
    return [population[0]]


# ------------------------------------------------------------ a version or label named
def test_no_version_named_is_the_latest_default_variant():
    assert routing.resolve(state(loaded={1: [DEFAULT], 3: [DEFAULT, "tflite_fp32"]}), DEFAULT) == ("3/onnx_fp32", None)


@pytest.mark.parametrize("version", [1, "1"])
def test_a_version_named_as_number_or_path_segment(version):
    st = state(loaded={1: [DEFAULT], 2: [DEFAULT]}, config={"shadow": {"version": 1}})
    assert routing.resolve(st, DEFAULT, version) == ("1/onnx_fp32", None)  # a pinned request is not mirrored


def test_a_label_names_a_version_and_wins_over_a_version():
    st = state({"labels": {"stable": 1, "canary": 2}}, {1: [DEFAULT], 2: [DEFAULT]})
    assert routing.resolve(st, DEFAULT, label="stable")[0] == "1/onnx_fp32"
    assert routing.resolve(st, DEFAULT, "2", label="stable")[0] == "1/onnx_fp32"


def test_an_unknown_label_is_404_naming_the_labels():
    st = state({"labels": {"stable": 1}}, {1: [DEFAULT]})
    with pytest.raises(NotFound, match="model 'imdb' has no label 'beta' \\(labels: stable\\)"):
        routing.resolve(st, DEFAULT, label="beta")


@pytest.mark.parametrize("text", ["0", "-1", "1.0", "x", "²", "١", "1" * 19, ""])
def test_a_version_that_is_not_a_number_is_400(text):
    with pytest.raises(BadRequest, match="is not a version number"):
        routing.parse_version(text)


def test_parse_version_takes_ascii_digits():
    assert routing.parse_version("007") == 7 and routing.parse_version("9" * 18) == int("9" * 18)


def test_a_version_not_loaded_is_404_saying_what_is():
    st = state(loaded={1: [DEFAULT]})
    st.failed[2] = ((), "sha256 check against manifest failed")
    with pytest.raises(
        NotFound,
        match=r"version 2 is not available: it failed to load \(sha256 check .*\); "
        r"loaded versions: 1",
    ):
        routing.resolve(st, DEFAULT, 2)
    with pytest.raises(NotFound, match=r"has no version 5 loaded \(loaded versions: 1\)"):
        routing.resolve(st, DEFAULT, 5)
    with pytest.raises(NotFound, match=r"version 1 has no loaded variant 'keras' \(loaded: onnx_fp32\)"):
        routing.servable(st, 1, "keras", DEFAULT)


def test_nothing_loaded_is_503_loading_or_why_every_version_failed():
    with pytest.raises(Unavailable, match="is loading") as e:
        routing.resolve(state(loading={1}), DEFAULT)
    assert e.value.headers == {"Retry-After": "1"}
    st = state()
    st.failed = {1: ((), "bad file"), 2: ((), "no variant 'x'")}
    with pytest.raises(Unavailable, match="has no loaded version: version 1: bad file; version 2: no variant 'x'") as e:
        routing.resolve(st, DEFAULT)
    assert e.value.headers == {"Retry-After": "5"}


# ------------------------------------------------------------ traffic split and shadow
def test_the_split_draws_by_weight_among_loaded_targets():
    st = state({"traffic": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]}, {1: [DEFAULT], 2: [DEFAULT]})
    rng = random.Random(0)
    drawn = Counter(routing.resolve(st, DEFAULT, choose=rng.choices)[0] for _ in range(4000))
    assert set(drawn) == {"1/onnx_fp32", "2/onnx_fp32"}
    assert 0.07 < drawn["2/onnx_fp32"] / 4000 < 0.13


def test_the_split_skips_targets_not_loaded_and_zero_weights():
    st = state(
        {
            "traffic": [
                {"version": 1, "weight": 0},
                {"version": 7, "weight": 50},
                {"variant": "tflite_fp32", "weight": 50},
            ]
        },
        {1: [DEFAULT], 2: [DEFAULT, "tflite_fp32"]},
    )
    seen = []

    def choose(population, weights):
        seen.append(([(t.version, t.variant) for t in population], weights))
        return [population[0]]

    assert routing.resolve(st, DEFAULT, choose=choose)[0] == "2/tflite_fp32"  # no version: the latest
    assert seen == [([(None, "tflite_fp32")], [50])]


def test_a_split_with_no_loaded_target_falls_back_to_the_latest():
    st = state({"traffic": [{"version": 4, "weight": 1}]}, {1: [DEFAULT], 2: [DEFAULT]})
    assert routing.resolve(st, DEFAULT, choose=first)[0] == "2/onnx_fp32"


def test_the_shadow_is_its_target_when_loaded_and_not_the_primary():
    st = state({"shadow": {"variant": "tflite_fp32"}}, {1: [DEFAULT, "tflite_fp32"]})
    assert routing.resolve(st, DEFAULT) == ("1/onnx_fp32", "1/tflite_fp32")
    st = state({"shadow": {"version": 1}, "traffic": [{"version": 1}]}, {1: [DEFAULT], 2: [DEFAULT]})
    assert routing.resolve(st, DEFAULT, choose=first) == ("1/onnx_fp32", None)  # never mirrored to itself
    st = state({"shadow": {"version": 3}}, {1: [DEFAULT]})
    assert routing.resolve(st, DEFAULT) == ("1/onnx_fp32", None)  # not loaded: no shadow


# ------------------------------------------------------------ what the policy loads
@pytest.mark.parametrize(
    "config, wanted",
    [
        ({}, [5]),
        ({"num_versions": 2}, [4, 5]),
        ({"version_policy": "all"}, [1, 4, 5]),
        ({"version_policy": "specific", "versions": [4, 9]}, [4]),
    ],
)
def test_the_version_policy(config, wanted):
    assert routing.wanted_versions(ModelConfig.model_validate(config), [1, 4, 5]) == wanted


def test_variants_to_load_follow_the_targets_of_each_version():
    cfg = ModelConfig.model_validate(
        {
            "traffic": [{"version": 1, "variant": "keras"}, {"variant": "tflite_fp32"}],
            "shadow": {"version": 2, "variant": "onnx_int8"},
        }
    )
    assert routing.variants_to_load(cfg, DEFAULT, 1, latest=False) == [DEFAULT, "keras"]
    assert routing.variants_to_load(cfg, DEFAULT, 2, latest=True) == [DEFAULT, "tflite_fp32", "onnx_int8"]
    assert routing.variants_to_load(cfg, DEFAULT, 3, latest=False) == [DEFAULT]


def test_default_and_named_variants():
    cfg = ModelConfig.model_validate({"variant": "tflite_fp32", "shadow": {"variant": "keras"}})
    assert routing.default_variant(cfg, None, DEFAULT) == "tflite_fp32"
    assert routing.default_variant(cfg, "onnx_int8", DEFAULT) == "onnx_int8"  # --variant wins
    assert routing.default_variant(ModelConfig(), None, DEFAULT) == DEFAULT
    assert routing.named_variants(cfg, None) == {"tflite_fp32", "keras"}
    assert routing.named_variants(ModelConfig(), "onnx_int8") == {"onnx_int8"}
