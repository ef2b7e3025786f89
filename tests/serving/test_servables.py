"""serving.servables in process: when a refused version is tried again (its files changed, its backoff over)."""

from __future__ import annotations

import time

from serving.servables import MAX_RETRY_BACKOFF_S, ModelState
from serving.serving_config import ModelConfig


def test_a_refused_version_waits_for_a_change_and_its_backoff(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    st = ModelState("imdb", ModelConfig())
    assert st.may_load(1, lambda: ("a",))  # never tried
    st.record_failure(1, ("a",), "bad", poll_interval_s=1.0)
    assert st.failed[1] == (("a",), "bad") and st.backoff[1] == (1, 1002.0)  # 1 s x 2^1
    assert not st.may_load(1, lambda: ("b",))  # changed, but within the backoff
    now[0] = 1002.0
    assert not st.may_load(1, lambda: ("a",))  # backoff over, files unchanged
    assert st.may_load(1, lambda: ("b",))
    st.record_failure(1, ("b",), "bad again", poll_interval_s=1.0)
    assert st.backoff[1] == (2, 1006.0)  # doubles per failure in a row
    for _ in range(20):
        st.record_failure(1, ("b",), "bad again", poll_interval_s=1.0)
    assert st.backoff[1][1] == now[0] + MAX_RETRY_BACKOFF_S  # capped


def test_a_loaded_version_forgets_its_failures():
    st = ModelState("imdb", ModelConfig())
    st.record_failure(2, ("a",), "bad", poll_interval_s=1.0)
    st.record_loaded(2, [])
    assert st.versions == {2: {}} and not st.failed and not st.backoff and st.may_load(2, lambda: ("a",))
    st.record_failure(3, ("a",), "bad", poll_interval_s=1.0)
    st.forget_failures()
    assert not st.failed and not st.backoff
