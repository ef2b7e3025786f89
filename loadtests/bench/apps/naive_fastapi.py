"""The baseline a user would write: one FastAPI route, a pydantic body, an onnxruntime session per request."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from loadtests.bench.apps.common import ROUTE, session, to_input

app = FastAPI()
sess, input_name = session()


class PredictRequest(BaseModel):
    instances: list[Any]


@app.post(ROUTE)
def predict(req: PredictRequest) -> dict:
    y = sess.run(None, {input_name: to_input(req.instances)})[0]
    return {"predictions": y.tolist()}
