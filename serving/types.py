"""Wire types of both protocols (as MLServer's), for validation messages and the OpenAPI docs.

Tensor ``data`` is typed ``Any`` so that large multi-hot payloads are not walked element by element;
the codecs check values with numpy and name the field when something is wrong.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorResponse(BaseModel):
    error: str = Field(examples=["instances[0]: expected 13 features, got 12"])


class RequestInput(BaseModel):
    name: str
    shape: list[int]
    datatype: str = Field(description="FP32, FP64, INT64, INT32 or BYTES (text)")
    parameters: dict[str, Any] | None = None
    data: Any = Field(description="row-major values, flat or nested")


class RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = Field(default=None, description='e.g. {"top_k": 3} for Reuters')
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: Any


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class PredictRequest(BaseModel):
    """TF Serving REST: ``instances`` (row format) or ``inputs`` (columnar format)."""

    signature_name: str | None = Field(default=None, description="serving_default (the only one for :predict)")
    instances: list[Any] | None = None
    inputs: Any = None


class PredictResponse(BaseModel):
    """As TF Serving answers: the output tensor's rows (row format) or the tensor (columnar)."""

    predictions: list[Any] | None = Field(default=None, examples=[[[0.87], [0.12]]])
    outputs: Any = None


class ExamplesRequest(BaseModel):
    """TF Serving's :classify and :regress: examples of named features, with shared ``context`` features."""

    signature_name: str | None = None
    context: dict[str, Any] | None = None
    examples: list[dict[str, Any]]


class ClassifyResponse(BaseModel):
    result: list[list[tuple[str, float]]] = Field(examples=[[[["negative", 0.13], ["positive", 0.87]]]])


class RegressResponse(BaseModel):
    result: list[float] = Field(examples=[[20.79]])


def inline_schema(model: type[BaseModel]) -> dict:
    """A JSON schema with its ``$defs`` inlined, for ``openapi_extra``."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].split("/")[-1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


TFS_EXAMPLES = {
    "imdb_text": {
        "summary": "IMDB: raw review text (POST /v1/models/imdb:predict)",
        "value": {"instances": ["A wonderful film, the acting was superb.", "Dull and far too long."]},
    },
    "reuters_text": {
        "summary": "Reuters: raw newswire text (POST /v1/models/reuters:predict)",
        "value": {"instances": ["wheat and corn exports rose as grain prices fell"]},
    },
    "imdb_ids": {"summary": "IMDB or Reuters: token ids", "value": {"instances": [{"ids": [1, 14, 22, 16, 43]}]}},
    "boston_named": {
        "summary": "Boston: features by name (POST /v1/models/boston:predict)",
        "value": {
            "instances": [
                {
                    "CRIM": 0.1,
                    "ZN": 0.0,
                    "INDUS": 8.1,
                    "CHAS": 0,
                    "NOX": 0.5,
                    "RM": 6.2,
                    "AGE": 60.0,
                    "DIS": 4.0,
                    "RAD": 5,
                    "TAX": 300,
                    "PTRATIO": 18.0,
                    "B": 390.0,
                    "LSTAT": 10.0,
                }
            ]
        },
    },
    "boston_list": {
        "summary": "Boston: features as a list, CRIM ... LSTAT",
        "value": {"instances": [[0.1, 0.0, 8.1, 0, 0.5, 6.2, 60.0, 4.0, 5, 300, 18.0, 390.0, 10.0]]},
    },
    "boston_columnar": {
        "summary": "Boston: columnar 'inputs'",
        "value": {"inputs": {"features": [[0.1, 0.0, 8.1, 0, 0.5, 6.2, 60.0, 4.0, 5, 300, 18.0, 390.0, 10.0]]}},
    },
}

CLASSIFY_EXAMPLES = {
    "imdb": {
        "summary": "IMDB: reviews (POST /v1/models/imdb:classify)",
        "value": {"examples": [{"text": "A wonderful film."}, {"text": "Dull and far too long."}]},
    },
    "reuters_ids": {
        "summary": "Reuters: token ids (POST /v1/models/reuters:classify)",
        "value": {"examples": [{"ids": [1, 14, 22, 16, 43]}]},
    },
}

REGRESS_EXAMPLES = {
    "boston": {
        "summary": "Boston: features by name, shared ones in context (POST /v1/models/boston:regress)",
        "value": {
            "context": {"CHAS": 0, "RAD": 5, "TAX": 300},
            "examples": [
                {
                    "CRIM": 0.1,
                    "ZN": 0.0,
                    "INDUS": 8.1,
                    "NOX": 0.5,
                    "RM": 6.2,
                    "AGE": 60.0,
                    "DIS": 4.0,
                    "PTRATIO": 18.0,
                    "B": 390.0,
                    "LSTAT": 10.0,
                }
            ],
        },
    },
}

V2_EXAMPLES = {
    "imdb_text": {
        "summary": "IMDB or Reuters: text as BYTES (POST /v2/models/imdb/infer)",
        "value": {
            "inputs": [
                {
                    "name": "text",
                    "shape": [2],
                    "datatype": "BYTES",
                    "data": ["A wonderful film.", "Dull and far too long."],
                }
            ]
        },
    },
    "reuters_topk": {
        "summary": "Reuters: text, top 5 topics (POST /v2/models/reuters/infer)",
        "value": {
            "parameters": {"top_k": 5},
            "inputs": [
                {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["oil prices rose after the opec meeting"]}
            ],
        },
    },
    "ids": {
        "summary": "IMDB or Reuters: token ids as INT64 [N, L], 0 = padding",
        "value": {"inputs": [{"name": "ids", "shape": [1, 5], "datatype": "INT64", "data": [1, 14, 22, 16, 43]}]},
    },
    "boston": {
        "summary": "Boston: FP32 [N, 13] (POST /v2/models/boston/infer)",
        "value": {
            "inputs": [
                {
                    "name": "features",
                    "shape": [1, 13],
                    "datatype": "FP32",
                    "data": [0.1, 0.0, 8.1, 0, 0.5, 6.2, 60.0, 4.0, 5, 300, 18.0, 390.0, 10.0],
                }
            ]
        },
    },
    "binary_output": {
        "summary": "Any model: outputs as binary tensors (application/octet-stream: a JSON header of "
        "Inference-Header-Content-Length bytes, then each output's bytes)",
        "value": {
            "parameters": {"binary_data_output": True},
            "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["A wonderful film."]}],
        },
    },
}
