"""The shared real-browser helper (tests/browser.py) really fails a page that reaches outside 127.0.0.1/file://."""

from __future__ import annotations

import pytest

from browser import headless_chromium, is_local, local_page


def test_is_local():
    assert is_local("http://127.0.0.1:8000/ui/") and is_local("file:///tmp/x/index.html")
    assert is_local("data:text/plain,x") and not is_local("https://cdn.jsdelivr.net/npm/x.js")
    assert not is_local("http://localhost.example.com/") and not is_local("http://10.0.0.1/")


def test_guard_fails_a_page_that_requests_the_internet(tmp_path):
    page_file = tmp_path / "index.html"
    page_file.write_text('<img src="https://example.com/pixel.png"><p id="done">ok</p>')
    with headless_chromium() as browser:
        with pytest.raises(AssertionError, match="example.com"):
            with local_page(browser) as page:
                page.goto(page_file.as_uri())
                page.wait_for_selector("#done")
        with local_page(browser) as page:  # a page that stays local passes
            page.set_content('<p id="done">ok</p>')
            assert page.text_content("#done") == "ok"
