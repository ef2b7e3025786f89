"""The token-id request read in one step: ``{"instances": [{"ids": [...]}, ...]}``, TF Serving's row format as a
text model's clients send it, parsed by simdjson straight into one unsigned array per instance.

Read the general way (orjson, then a type check and a conversion per list), its ids cost about a third of a served
request's CPU: every id becomes a Python int first. simdjson writes them into a buffer without that, and refuses
what is not an unsigned 64-bit integer (a bool, a float, a string, null, a negative or too large number) by itself.

This reader only ever accepts a body that the general one would accept and read the same way; anything else (another
key, a duplicated key, a nested list, a count outside ``[1, max_instances]``, a bad id, malformed JSON) gives None,
and the general reader (:func:`serving.protocols.http.parse_json`, :func:`serving.protocols.tfs.decode_predict`)
reads it and names what is wrong.
"""

from __future__ import annotations

import threading

import numpy as np
import simdjson

_local = threading.local()


def id_rows(body: bytes, max_instances: int) -> list[np.ndarray] | None:
    """Each instance's ids as uint64, or None when the body is not exactly this request (see the module)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    try:
        return _read(parser, body, max_instances)
    except Exception:  # noqa: BLE001 - simdjson refuses with several types (a big integer: RuntimeError); any
        _local.parser = None  # refusal means "not this request", and a fresh parser owes nothing to the last one
        return None


def _read(parser, body: bytes, max_instances: int) -> list[np.ndarray] | None:
    """No simdjson object may outlive this call: the parser refuses to parse again while one does."""
    doc = parser.parse(body)
    if doc.__class__ is not simdjson.Object or len(doc) != 1 or "instances" not in doc:
        return None
    instances = doc["instances"]
    n = len(instances) if instances.__class__ is simdjson.Array else 0
    # as_buffer flattens nested lists; no "[" or "{" besides the list and its instances' means none are nested
    if not 1 <= n <= max_instances or body.count(b"[") != 1 + n or body.count(b"{") != 1 + n:
        return None
    rows = []
    for instance in instances:
        if instance.__class__ is not simdjson.Object or len(instance) != 1 or "ids" not in instance:
            return None
        ids = instance["ids"]
        if ids.__class__ is not simdjson.Array:
            return None
        rows.append(np.frombuffer(ids.as_buffer(of_type="u"), np.uint64))
    return rows
