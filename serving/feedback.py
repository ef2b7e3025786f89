"""Ground truth for logged predictions: ``POST /v2/models/{name}/feedback``.

One item ``{"request_id": ..., "label": ...}`` (IMDB, Reuters: the label name or its index) or
``{"request_id": ..., "value": ...}`` (Boston), with ``"instance"`` when the request sent several instances;
or a batch ``{"items": [...]}``. Each item is answered on its own: ``stored``, ``replaced`` (an earlier truth
for it existed: the last one counts), ``unknown_request_id`` or ``invalid`` with the reason. The request id is
the one the answer carried: the V2 ``id``, else the ``X-Request-Id`` header.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request

from serving.errors import BadRequest, NotFound
from serving.protocols.http import parse_json
from serving.rest import json_response

MAX_ITEMS = 10000
RID_MAX = 128
"""Request ids are kept to this many characters (as the log keeps them, ``serving.predlog.rows.RID_MAX``)."""


_ITEM = {
    "type": "object",
    "required": ["request_id"],
    "additionalProperties": False,
    "properties": {
        "request_id": {"type": "string", "description": "the id the answer carried (X-Request-Id, or the V2 id)"},
        "instance": {
            "type": "integer",
            "minimum": 0,
            "description": "which instance of the request (default: its one)",
        },
        "label": {
            "oneOf": [{"type": "string"}, {"type": "integer", "minimum": 0}],
            "description": "the true label, by name or index (IMDB, Reuters)",
        },
        "value": {"type": "number", "description": "the true value (Boston, $1000s)"},
    },
}
OPENAPI_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    _ITEM,
                    {
                        "type": "object",
                        "required": ["items"],
                        "additionalProperties": False,
                        "properties": {
                            "items": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": _ITEM}
                        },
                    },
                ]
            },
            "examples": {
                "one": {"value": {"request_id": "3f2c9a", "label": "positive"}},
                "batch": {
                    "value": {
                        "items": [
                            {"request_id": "3f2c9a", "label": 1},
                            {"request_id": "77ab01", "instance": 1, "label": "negative"},
                        ]
                    }
                },
            },
        }
    },
}
"""The route's request body in the OpenAPI document (its handler reads the raw body)."""


@dataclass
class Item:
    request_id: str
    instance: int | None
    label: str | None = None
    value: float | None = None
    error: str | None = None


def truth(task, given: Mapping, where: str) -> tuple[str | None, float | None]:
    """The label (its name) or value of an item for ``task``; ValueError naming the problem."""
    if not task.predicts_labels:
        if "label" in given:
            raise ValueError(f"{where}: this model predicts a value; send 'value', not 'label'")
        v = given.get("value")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{where}.value: must be a finite number")
        return None, float(v)
    if "value" in given:
        raise ValueError(f"{where}: this model predicts a label; send 'label', not 'value'")
    lab = given.get("label")
    labels = task.labels
    if isinstance(lab, int) and not isinstance(lab, bool):
        if not 0 <= lab < len(labels):
            raise ValueError(f"{where}.label: index {lab} out of range 0..{len(labels) - 1}")
        return labels[lab], None
    if isinstance(lab, str):
        if lab in labels:
            return lab, None
        if lab.isascii() and lab.isdigit() and int(lab) < len(labels):
            return labels[int(lab)], None
        shown = ", ".join(labels[:8]) + (", ..." if len(labels) > 8 else "")
        raise ValueError(f"{where}.label: unknown label '{lab[:64]}' (labels: {shown}; or an index)")
    raise ValueError(f"{where}.label: must be a label name or index")


def parse_item(task, obj, where: str) -> Item:
    """One feedback item, checked; an item with a problem carries it in ``error``."""
    if not isinstance(obj, Mapping):
        return Item("", None, error=f"{where}: must be an object with request_id and label or value")
    rid = obj.get("request_id")
    inst = obj.get("instance")
    if not isinstance(rid, str) or not rid:
        return Item("", None, error=f"{where}.request_id: must be a non-empty string")
    item = Item(rid[:RID_MAX], None)
    if inst is not None and (isinstance(inst, bool) or not isinstance(inst, int) or inst < 0):
        item.error = f"{where}.instance: must be a non-negative integer"
        return item
    item.instance = inst
    unknown = set(obj) - {"request_id", "instance", "label", "value"}
    if unknown:
        item.error = f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}"
        return item
    try:
        item.label, item.value = truth(task, obj, where)
    except ValueError as e:
        item.error = str(e)
    return item


def resolve_instances(items: list[Item], found: dict[str, set[int]]) -> None:
    """Check each valid item against the logged instances of its request; the default instance is 0, allowed
    only when the request sent one."""
    for it in items:
        if it.error is not None:
            continue
        logged = found.get(it.request_id)
        if logged is None:
            it.error = "unknown_request_id"
        elif it.instance is None:
            if len(logged) > 1:
                it.error = f"request {it.request_id} sent {len(logged)} instances; say which one with 'instance'"
            else:
                it.instance = min(logged)
        elif it.instance not in logged:
            it.error = f"request {it.request_id} has no instance {it.instance} (instances 0..{max(logged)})"


def apply(engine, model: str, items: list[Item], source: str) -> list[dict]:
    """Check the items against the log and store the valid ones, in one transaction; a result per item."""
    from serving.predlog import truth as db

    with engine.begin() as conn:
        resolve_instances(items, db.instances(conn, model, [i.request_id for i in items if i.error is None]))
        good = [i for i in items if i.error is None]
        replaced = db.store(conn, model, [(i.request_id, i.instance, i.label, i.value) for i in good], source)
    out = []
    for it in items:
        r = {"request_id": it.request_id, **({"instance": it.instance} if it.instance is not None else {})}
        if it.error == "unknown_request_id":
            r |= {
                "status": "unknown_request_id",
                "error": f"no logged prediction of model '{model}' has request "
                f"id '{it.request_id}' (not logged, not sampled, past the retention, or not written yet)",
            }
        elif it.error is not None:
            r |= {"status": "invalid", "error": it.error}
        elif (it.request_id, it.instance) in replaced:
            r |= {
                "status": "replaced",
                "note": "an earlier truth for this prediction was replaced: the last one counts",
            }
        else:
            r["status"] = "stored"
        out.append(r)
    return out


async def feedback(request: Request, name: str):
    """Ground truth for logged predictions (see the module docstring)."""
    dp = request.app.state.dataplane
    if dp.predlog is None:
        raise NotFound(
            "feedback needs the prediction log: start the server with --prediction-log URL (MODELYARD_PREDICTION_LOG)"
        )
    task = dp.servable(name).codec.task
    obj = parse_json(await request.body())
    if not isinstance(obj, Mapping):
        raise BadRequest('body: must be {"request_id": ..., "label" or "value": ...} or {"items": [...]}')
    batch = "items" in obj
    if batch:
        if set(obj) != {"items"} or not isinstance(obj["items"], list) or not obj["items"]:
            raise BadRequest('body: {"items": [...]} with a non-empty list and nothing else')
        if len(obj["items"]) > MAX_ITEMS:
            raise BadRequest(f"items: {len(obj['items'])} items, at most {MAX_ITEMS} per request")
        items = [parse_item(task, o, f"items[{i}]") for i, o in enumerate(obj["items"])]
    else:
        items = [parse_item(task, obj, "body")]
    results = await asyncio.to_thread(apply, dp.predlog.engine, name, items, "feedback")
    if batch:
        return json_response(
            {
                "items": results,
                "counts": {
                    s: sum(r["status"] == s for r in results)
                    for s in ("stored", "replaced", "unknown_request_id", "invalid")
                },
            }
        )
    r = results[0]
    if r["status"] == "unknown_request_id":
        raise NotFound(r["error"])
    if r["status"] == "invalid":
        raise BadRequest(r["error"])
    return json_response(r)
