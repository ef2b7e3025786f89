"""API keys and what they guard.

With a key set (``--api-key``, or ``--api-key-file`` with one key per line, several valid at once for rotation),
every request needs one, from ``X-API-Key`` or ``Authorization: Bearer`` (gRPC: the same metadata keys), except
the health probes and ``/metrics``. ``--public-metadata`` leaves metadata, status and the docs open. Keys compare
as UTF-8 bytes, in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

from modelyard.errors import ModelyardError
from modelyard.settings import Settings
from serving.errors import ServingError

PROBE, METADATA, PROTECTED = "probe", "metadata", "protected"
"""Scopes: probes never need a key; metadata needs one unless ``public_metadata``; the rest always."""
PUBLIC_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/metrics"})


def console_page(path: str) -> bool:
    """The web console's static files (``serving/console/``): no data in them, so open like the probes; the data
    it shows comes from ``/ui/api/``, which is metadata."""
    return (path == "/ui" or path.startswith("/ui/")) and not path.startswith("/ui/api/")


class Unauthorized(ServingError):
    status = 401

    def __init__(self):
        super().__init__(
            "missing or invalid API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer "
            "<key>' (gRPC: the same metadata keys, lower-case)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def read_keys(settings: Settings) -> list[bytes]:
    keys = [settings.api_key] if settings.api_key else []
    if settings.api_key_file is not None:
        try:
            lines = Path(settings.api_key_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ModelyardError(f"--api-key-file {settings.api_key_file}: cannot read it ({e})") from None
        keys += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        if not keys:
            raise ModelyardError(f"--api-key-file {settings.api_key_file}: no key in it (one per line)")
    return [k.encode("utf-8") for k in keys]


def rest_scope(method: str, path: str) -> str:
    """The scope of a REST route that is not an inference route."""
    if path in PUBLIC_PATHS or console_page(path):
        return PROBE
    if method in ("GET", "HEAD") or path == "/v2/repository/index":
        return METADATA
    return PROTECTED


class ApiKeys:
    def __init__(self, settings: Settings):
        self._keys = read_keys(settings)
        self._public_metadata = settings.public_metadata

    def __bool__(self) -> bool:
        return bool(self._keys)

    def check(self, headers: Mapping[str, str], scope: str = PROTECTED) -> None:
        """Raise :class:`Unauthorized` unless the scope is open or the headers carry a valid key. Header values
        arrive as latin-1 text (their raw bytes): encoded back, a UTF-8 key compares byte for byte."""
        if not self._keys or scope == PROBE or (scope == METADATA and self._public_metadata):
            return
        given = headers.get("x-api-key")
        if given is None:
            auth = headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:]
        if given is None:
            raise Unauthorized()
        try:
            raw = given.encode("latin-1")
        except UnicodeEncodeError:  # gRPC metadata arrives as str
            raw = given.encode("utf-8")
        if not any(hmac.compare_digest(raw, k) for k in self._keys):
            raise Unauthorized()
