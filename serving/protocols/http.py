"""What both REST protocols share: JSON bodies, ``Content-Encoding`` of requests and of answers."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from typing import Any

import orjson

from serving.errors import BadRequest, ServingError

COMPRESS_MIN_BYTES = 1024
"""Answers shorter than this go uncompressed even when the client accepts gzip: compressing them costs more
CPU than it saves bytes."""


class BodyTooLarge(ServingError):
    status = 413

    def __init__(self, limit: int):
        super().__init__(
            f"request body is larger than the limit of {limit} bytes (MODELYARD_MAX_BODY_BYTES), "
            "after decompression; send fewer instances per request"
        )


JSON_MEDIA_TYPES = frozenset({"application/json", "application/x-www-form-urlencoded", "application/octet-stream"})
"""What an inference body may be declared as: JSON; curl's default for ``-d`` (TF Serving's own examples send
that); and octet-stream, for Triton's binary tensor extension. ``+json`` types are JSON too."""


class UnsupportedMediaType(ServingError):
    status = 415


def check_content_type(content_type: str | None) -> None:
    """A declared ``Content-Type`` that says the body is not JSON (``text/plain``, ``multipart/form-data``, ...) is
    415, before the body is read; no header at all is taken as JSON."""
    if content_type is None:
        return
    media = content_type.partition(";")[0].strip().lower()
    if media and media not in JSON_MEDIA_TYPES and not media.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type: {media[:100]!r} is not accepted; send the body as application/json")


def parse_json(body: bytes) -> Any:
    """The body's JSON; a body that repeats a key in an object is a 400 naming it (a JSON parser would keep
    the last value silently, and the client would get an answer to a request it did not mean)."""
    if not body:
        raise BadRequest("body: empty; send a JSON object")
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"body: malformed JSON: {e}") from None
    colons = body.count(b":")
    if colons > 1:  # one key cannot repeat
        keys = _object_keys(obj)
        if colons != keys and len(_KEY_SEPARATOR.findall(body)) != keys:
            _refuse_duplicate_keys(body)
    return obj


_KEY_SEPARATOR = re.compile(rb'"[ \t\n\r]*:')
"""Every key's closing quote and colon; also an escaped quote followed by a colon inside a string (so never
fewer than the keys the body holds). The colons are never fewer than these: when the keys parsed are as many as
the colons, they are as many as the separators too, and the regular expression need not run."""


def _object_keys(obj: Any) -> int:
    """The keys of the parsed objects; a list is entered only when its first item is a list or an object (a list
    of numbers or strings holds none). Never more than the body holds, and as many when no key is repeated, so
    when it equals the separators counted, no key is repeated; when not, :func:`_refuse_duplicate_keys` decides.
    Only containers worth entering are stacked (a request's usual body: three of them)."""
    if obj.__class__ not in _CONTAINERS:
        return 0
    n = 0
    stack = [obj]
    push = stack.append
    while stack:
        o = stack.pop()
        if o.__class__ is dict:
            n += len(o)
            o = o.values()
        for v in o:
            c = v.__class__
            if c is dict or (c is list and v and v[0].__class__ in _CONTAINERS):
                push(v)
    return n


_CONTAINERS = frozenset({dict, list})


def _refuse_duplicate_keys(body: bytes) -> None:
    def pairs(items: list[tuple[str, Any]]) -> dict:
        seen = {}
        for k, v in items:
            if k in seen:
                raise BadRequest(f"body: the key {k[:100]!r} appears twice in one object; send each key once")
            seen[k] = v
        return seen

    json.loads(body, object_pairs_hook=pairs)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """A ``Content-Encoding: gzip | deflate | identity`` body, decompressed to at most ``limit`` bytes
    (413 past it, so a small compressed bomb cannot fill memory)."""
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding in ("gzip", "x-gzip"):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif coding == "deflate":
        d = zlib.decompressobj(zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS)  # zlib or raw deflate
    else:
        raise ServingError(f"Content-Encoding: {encoding!r} is not supported; use gzip, deflate or identity", 415)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise BadRequest(f"body: not valid {coding} data ({e})") from None
    if len(out) > limit:
        raise BodyTooLarge(limit)
    if not d.eof:
        raise BadRequest(f"body: {coding} data is truncated")
    return out


def accepted_encoding(accept_encoding: str | None) -> str | None:
    """``gzip`` or ``deflate`` when the client's ``Accept-Encoding`` takes it (gzip preferred), else None."""
    if not accept_encoding:
        return None
    offered = {}
    for part in accept_encoding.lower().split(","):
        coding, _, q = part.strip().partition(";")
        q = q.strip()
        try:
            offered[coding.strip()] = float(q[2:]) if q.startswith("q=") else 1.0
        except ValueError:
            offered[coding.strip()] = 0.0
    for coding in ("gzip", "deflate"):
        if offered.get(coding, offered.get("*", 0.0)) > 0:
            return coding
    return None


def compress(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body, compresslevel=5, mtime=0)
    return zlib.compress(body, 5)
