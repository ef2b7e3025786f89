"""Ground truth: which logged requests exist, and storing labels or values for them (the last one counts)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import Connection, and_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from serving.predlog import schema

CHUNK = 500
"""Request ids per lookup query (SQLite allows a few thousand bound parameters)."""


def instances(conn: Connection, model: str, request_ids: Iterable[str]) -> dict[str, set[int]]:
    """The logged instances of each of ``request_ids`` that the log holds (primary or shadow rows)."""
    p = schema.predictions
    ids = sorted(set(request_ids))
    found: dict[str, set[int]] = {}
    for i in range(0, len(ids), CHUNK):
        q = (
            select(p.c.request_id, p.c.instance)
            .distinct()
            .where(p.c.model == model, p.c.request_id.in_(ids[i : i + CHUNK]))
        )
        for rid, inst in conn.execute(q):
            found.setdefault(rid, set()).add(inst)
    return found


def existing(conn: Connection, model: str, keys: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of ``(request_id, instance)`` already have ground truth."""
    g = schema.ground_truth
    out = set()
    for i in range(0, len(keys), CHUNK):
        q = select(g.c.request_id, g.c.instance).where(
            and_(g.c.model == model, tuple_(g.c.request_id, g.c.instance).in_(keys[i : i + CHUNK]))
        )
        out.update((r, n) for r, n in conn.execute(q))
    return out


def store(
    conn: Connection, model: str, items: list[tuple[str, int, str | None, float | None]], source: str
) -> set[tuple[str, int]]:
    """Upsert ``(request_id, instance, label, value)`` rows; returns the keys that replaced an earlier truth."""
    if not items:
        return set()
    keys = list(dict.fromkeys((rid, inst) for rid, inst, _, _ in items))
    replaced = existing(conn, model, keys)
    now = time.time()
    last = {(rid, inst): (label, value) for rid, inst, label, value in items}  # in one call too, the last counts
    rows = [
        {
            "model": model,
            "request_id": rid,
            "instance": inst,
            "label": label,
            "value": value,
            "source": source,
            "ts": now,
        }
        for (rid, inst), (label, value) in last.items()
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(schema.ground_truth)
    stmt = stmt.on_conflict_do_update(
        index_elements=["model", "request_id", "instance"],
        set_={c: stmt.excluded[c] for c in ("label", "value", "source", "ts")},
    )
    conn.execute(stmt, rows)
    return replaced
