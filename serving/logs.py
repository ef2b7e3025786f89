"""Structured JSON logs, one object per line, with the request id of the request being handled."""

from __future__ import annotations

import contextvars
import io
import logging
import os
import re
import sys
import threading
import time
from random import getrandbits

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def new_request_id() -> str:
    """The id of a request that came without one: 32 hex digits, the first 12 the time in milliseconds (as in a
    UUIDv7), the other 20 random. Ids that grow with time go to the end of the prediction log's request-id index;
    random ones would each land on a different page of it, and every such page is written again at each commit.
    The random part comes from :mod:`random` (reseeded in every forked worker), not ``os.urandom``: an id needs to
    be unique, not secret, and a system call per request cost more than the rest of it."""
    return f"{time.time_ns() // 1_000_000:012x}{getrandbits(80):020x}"


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            out["request_id"] = rid
        for k, v in record.__dict__.items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def capture_native_output() -> io.TextIOBase:
    """Route file descriptor 2 through a pipe so that what native libraries write there (onnxruntime's and
    gRPC's C++ logs) becomes JSON log lines too; Python's ``sys.stderr`` (the JSON handler, a CLI error line)
    moves to a copy of the original stderr, so nothing of Python's waits on the pipe. A daemon thread reads the
    pipe: each read makes one record of logger ``native``."""
    original = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stderr = original
    native = logging.getLogger("native")

    def pump() -> None:
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                text = _ANSI.sub("", chunk.decode("utf-8", "replace")).strip()
                if text:
                    native.warning("native output", extra={"text": text[:8192]})

    threading.Thread(target=pump, name="native-output", daemon=True).start()
    return original


def setup_logging(level: str = "info", native: bool = True) -> None:
    """JSON lines on stderr for every logger; with ``native``, what native libraries write to stderr too."""
    handler = logging.StreamHandler(capture_native_output() if native else sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
