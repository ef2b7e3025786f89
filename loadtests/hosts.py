"""Load is only ever sent to this machine: loopback hosts (127.0.0.0/8, localhost, ::1)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class HostError(ValueError):
    pass


def check_loopback(url: str) -> str:
    """``url`` unchanged when its host is a loopback address, else HostError saying why."""
    if not url:
        raise HostError("no host given: pass --host http://127.0.0.1:PORT (or --start-server)")
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https"):
        raise HostError(f"host {url!r}: only http:// or https:// URLs")
    host = parts.hostname or ""
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise HostError(f"host {url!r}: bad port") from None
    if host == "localhost":
        return url
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None or not ip.is_loopback:
        raise HostError(
            f"refusing to send load to {host or url!r}: only loopback hosts are allowed (127.0.0.0/8, localhost, [::1])"
        )
    return url
