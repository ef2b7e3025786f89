"""Errors that become HTTP answers ``{"error": "..."}``. Bad input is always 4xx, never 5xx."""

from __future__ import annotations


class ServingError(Exception):
    status = 500

    def __init__(self, message: str, status: int | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = headers or {}


class BadRequest(ServingError):
    status = 400


class NotFound(ServingError):
    status = 404


class Unavailable(ServingError):
    """The model is loading, or its queue is full: come back later."""

    status = 503
