"""Schemathesis against ``/openapi.json`` of a real ``modelyard serve`` process (the ``server`` fixture: tiny
imdb, reuters and boston models, no API key). Every documented operation is sent its documented examples (to each
model), then generated requests, ones that fit the schema and ones that break it; every answer must be no 5xx, a
documented status, of the documented content type and headers, matching the documented response schema, and a
request that breaks the schema must be refused (4xx).

Bounded: ``MODELYARD_FUZZ_EXAMPLES`` (default 45) generated cases per operation and mode, no shrinking; about a
minute in all on 2 cores. A failure names the operation and gives a curl line that reproduces it.

schemathesis' pytest integration (``schemathesis.pytest.from_fixture``) sets pytest's private ``Item._nodeid``,
which pytest 9 no longer has, so each operation's cases come from its documented Python API instead
(``schemathesis.openapi.from_url``, ``APIOperation.as_strategy`` under Hypothesis' ``@given``).
"""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")

import requests  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.hooks import HookDispatcher, HookScope  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from serving.app import _INFERENCE_DOCS, ROUTES  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("MODELYARD_FUZZ_EXAMPLES", "45"))
MODELS = ("imdb", "reuters", "boston")
BOSTON = ("CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
"""Left out: ``positive_data_acceptance`` (a request that fits the schema must get a 2xx): the schema cannot say
which model takes which tensor (a BYTES ``text`` tensor is valid JSON for Boston too, and Boston answers 400
naming the input), which model names, versions and labels exist, or how many values a shape needs, so requests
valid by the schema are rightly refused with 400 / 404. The stateful checks (``use_after_free``,
``ensure_resource_availability``) follow links between operations, and this API declares none; ``ignored_auth``
needs declared security schemes (the fixture server runs without an API key; test_auth.py covers keys)."""

OPERATIONS = sorted({(m, p) for m, p, *_ in ROUTES} | {("POST", p) for p, *_ in _INFERENCE_DOCS})

SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


# ------------------------------------------------------------------ steering the generated values
def _real_names(ctx, params: dict):
    """Path parameters mostly name things that exist (a model, version 1), so that generated bodies reach
    the codecs and the models instead of stopping at a 404 (the model is checked before the body is read);
    the generated value stays one of the choices."""
    if not params:
        return st.just(params)
    choices = {
        "name": [*MODELS, params.get("name")],
        "version": ["1", params.get("version")],
        "label": ["stable", params.get("label")],
    }
    return st.fixed_dictionaries(
        {k: st.sampled_from(choices[k]) if k in choices else st.just(v) for k, v in params.items()}
    )


_NUMBER = st.integers(-(10**20), 10**20) | st.floats(allow_nan=False, allow_infinity=False)
_ROW = st.one_of(  # what the models take, with values past what they can hold
    st.text(max_size=40),
    st.lists(_NUMBER, min_size=12, max_size=14),
    st.fixed_dictionaries({"ids": st.lists(st.integers(-(2**64), 2**64), max_size=12)}),
    st.fixed_dictionaries({"text": st.text(max_size=40)}),
    st.fixed_dictionaries({"multi_hot": st.lists(_NUMBER, max_size=12)}),
    st.fixed_dictionaries({"b64": st.text(max_size=20)}),
    st.fixed_dictionaries({f: _NUMBER for f in BOSTON}),
    st.fixed_dictionaries({}, optional={f: _NUMBER for f in BOSTON}),
)


def _real_bodies(ctx, body):
    """Positive mode only: bodies valid by the schema whose values are mostly of the kinds the models read
    (V2 tensors named and typed as the models declare them; TF Serving rows of text, ids, 13 numbers or named
    features), so the fuzzing reaches the codecs' checks rather than stopping at an unknown input name."""
    path = ctx.operation.path
    if not isinstance(body, dict):
        return st.just(body)
    if path.endswith("/infer") and isinstance(body.get("inputs"), list):

        def tensor(t):
            if not isinstance(t, dict):
                return st.just(t)
            return st.builds(
                lambda n, d: {**t, "name": n, "datatype": d},
                st.sampled_from(["text", "ids", "multi_hot", "features", t.get("name")]),
                st.sampled_from(["BYTES", "INT64", "FP32", "FP64", "INT32", "BOOL", t.get("datatype")]),
            )

        binary = st.sampled_from([body.get("parameters"), {"binary_data_output": True}])  # Triton's binary answer
        return st.builds(
            lambda ins, params: {**body, "inputs": list(ins), "parameters": params},
            st.tuples(*map(tensor, body["inputs"])),
            binary,
        )
    if path.endswith(":predict") and "instances" in body:
        return st.sampled_from([body, None]).flatmap(
            lambda b: st.just(b) if b else st.lists(_ROW, max_size=3).map(lambda rows: {**body, "instances": rows})
        )
    if path.endswith((":classify", ":regress")) and "examples" in body:
        return st.sampled_from([body, None]).flatmap(
            lambda b: (
                st.just(b)
                if b
                else st.lists(_ROW.filter(lambda r: isinstance(r, dict)), max_size=3).map(
                    lambda rows: {**body, "examples": rows}
                )
            )
        )
    return st.just(body)


POSITIVE_HOOKS = HookDispatcher(scope=HookScope.TEST)
POSITIVE_HOOKS.hook("flatmap_body")(_real_bodies)


# ------------------------------------------------------------------ the schema
@pytest.fixture(scope="module")
def _tuples_in_responses():
    """schemathesis 4.32.5 rewrites a response schema's ``prefixItems`` (JSON Schema 2020-12, which OpenAPI 3.1
    uses) into draft 4's ``items: [...]`` and then validates with a 2020-12 validator, which refuses that as an
    invalid schema (the ``[label, score]`` pairs of ``:classify``; schemathesis issue #3842). For OpenAPI 3.1
    documents (the only ones passing ``upgrade_legacy_exclusive_bounds``) response schemas are kept as written,
    which is what a 2020-12 validator reads."""
    from schemathesis.specs.openapi.adapter import responses

    original = responses.to_json_schema

    def keep_prefix_items(schema, *args, **kw):
        if kw.get("upgrade_legacy_exclusive_bounds"):
            kw["convert_prefix_items"] = False
        return original(schema, *args, **kw)

    responses.to_json_schema = keep_prefix_items
    yield
    responses.to_json_schema = original


@pytest.fixture(scope="module")
def api_schema(server, _tuples_in_responses):
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", timeout=30)
    schema.hook("flatmap_path_parameters")(_real_names)
    return schema


# ------------------------------------------------------------------ the tests
def test_every_route_is_fuzzed(api_schema):
    documented = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_openapi_fuzz(api_schema, server, method, path):
    operation = api_schema[path][method]
    statuses: dict[int, int] = {}

    with requests.Session() as session:

        def call(case):
            r = case.call_and_validate(base_url=server.url, session=session, checks=CHECKS, timeout=30)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        def to_every_model(case):
            for model in MODELS:
                case.path_parameters = {
                    k: {"name": model, "version": "1"}.get(k, v) for k, v in case.path_parameters.items()
                }
                call(case)

        for example in operation.get_strategies_from_examples():
            settings(SETTINGS, max_examples=1)(given(case=example)(to_every_model))()
        SETTINGS(given(case=operation.as_strategy(GenerationMode.POSITIVE, hooks=POSITIVE_HOOKS))(call))()
        try:
            SETTINGS(given(case=operation.as_strategy(GenerationMode.NEGATIVE))(call))()
        except Unsatisfiable:
            pass  # nothing in this operation can break the schema (no body; path parameters are any string)

    print(method, path, "statuses:", dict(sorted(statuses.items())))
    if path in {p for p, *_ in _INFERENCE_DOCS} and "{label}" not in path:
        assert statuses.get(200), "no request reached a model"
