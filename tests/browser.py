"""Real-browser test helpers, shared by every test that drives a page: Debian's Chromium (never a Playwright
browser download) run headless by Playwright for Python, and pages whose every request must stay on 127.0.0.1 or
``file://`` (anything else is aborted and fails the test), as must any uncaught JavaScript error.

Usage (the test directory is on ``sys.path``, as for ``conftest``)::

    from browser import headless_chromium, local_page

    @pytest.fixture(scope="module")
    def chromium():
        with headless_chromium() as browser:
            yield browser

    def test_page(chromium):
        with local_page(chromium) as page:
            page.goto("http://127.0.0.1:8000/ui/")
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LOCAL_SCHEMES = {"file", "data", "blob", "about"}
LOCAL_HOSTS = {"127.0.0.1"}


def find_chromium() -> str | None:
    """The Chromium executable: MODELYARD_CHROMIUM if set, else the first of CHROMIUM_NAMES on PATH."""
    if explicit := os.environ.get("MODELYARD_CHROMIUM"):
        return explicit if Path(explicit).is_file() else None
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (
        parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in LOCAL_HOSTS
    )


@contextlib.contextmanager
def headless_chromium() -> Iterator:
    """A headless Chromium ``playwright.sync_api.Browser``; skips the test, with the reason, only when no Chromium
    executable can be found (`.ci/run` installs Debian's ``chromium`` package)."""
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium found: apt-get install chromium, or set MODELYARD_CHROMIUM to its executable")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=path, headless=True, args=["--disable-background-networking", "--disable-component-update"]
        )
        try:
            yield browser
        finally:
            browser.close()


class LocalOnlyGuard:
    """Records every request leaving 127.0.0.1 / ``file://`` (and aborts it), and every uncaught page error."""

    def __init__(self) -> None:
        self.outside: list[str] = []
        self.page_errors: list[str] = []

    def on_request(self, request) -> None:
        if not is_local(request.url):
            self.outside.append(request.url)

    def route(self, route) -> None:
        if is_local(route.request.url):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort("blockedbyclient")

    def check(self) -> None:
        assert not self.outside, f"the page requested something outside 127.0.0.1 and file://: {self.outside}"
        assert not self.page_errors, f"uncaught JavaScript errors on the page: {self.page_errors}"


def await_in_page(page, promise_expression: str, timeout_s: float = 60):
    """The settled value of a JS expression (a promise or not) in the page; an error after ``timeout_s``. It works
    on pages whose Content-Security-Policy forbids ``eval``, which ``page.wait_for_function`` with a string needs."""
    late = json.dumps(f"{promise_expression} did not settle in {timeout_s:g} s")
    return page.evaluate(
        f"() => Promise.race([Promise.resolve({promise_expression}), new Promise((_, reject) => "
        f"setTimeout(() => reject(new Error({late})), {timeout_s * 1000:.0f}))])"
    )


@contextlib.contextmanager
def local_page(browser, **context_args) -> Iterator:
    """A page in a fresh context (service workers blocked, so every request is seen); on leaving the block the test
    fails if the page requested anything outside 127.0.0.1 or ``file://`` or raised an uncaught JS error."""
    context = browser.new_context(service_workers="block", **context_args)
    guard = LocalOnlyGuard()
    context.route("**/*", guard.route)
    context.on("request", guard.on_request)
    page = context.new_page()
    page.on("pageerror", lambda e: guard.page_errors.append(str(e)))
    try:
        yield page
    finally:
        context.close()
    guard.check()
