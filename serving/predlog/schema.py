"""The prediction log's tables, the same on SQLite and PostgreSQL, and their migrations.

SQLAlchemy Core, not its ORM: rows are written in batches by one thread and read by aggregate queries, so
tables and statements are all that is needed, and one set of them runs on both databases (the dialect writes
each one's SQL, upserts included). Migrations are an ordered list of steps applied at server start under a
``schema_version`` table, each in its own transaction: the server migrates itself, with no separate upgrade
command, and there is one short list to read instead of Alembic's script directory and environment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from modelyard.errors import ModelyardError

log = logging.getLogger("serving.predlog")

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(128), nullable=False),
    # Row of the request (a request may send several instances).
    Column("instance", Integer, nullable=False),
    # Unix time, seconds (UTC).
    Column("ts", Float, nullable=False),
    Column("model", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("variant", String(64), nullable=False),
    # How the request was routed: ``split`` (the traffic split chose), ``latest``, ``version``, ``label:<name>``, or
    # ``shadow`` (the mirrored candidate's answer, not sent to the client).
    Column("arm", String(64), nullable=False),
    # JSON: ``{"text": ...}``, ``{"ids": [...]}``, ``{"multi_hot_ids": [...]}`` or ``{"features": {...}}``; None on
    # shadow rows (the primary row of the same request holds it).
    Column("input", Text),
    # JSON: ``{"label", "probability", "scores"}`` or ``{"value"}``.
    Column("output", Text, nullable=False),
    # Predicted label (classification).
    Column("label", String(128)),
    # Probability of the predicted label (classification).
    Column("confidence", Float),
    # Predicted value (regression).
    Column("value", Float),
    Column("latency_ms", Float, nullable=False),
)
Index("ix_predictions_lookup", predictions.c.model, predictions.c.request_id, predictions.c.instance)
Index("ix_predictions_ts", predictions.c.ts)

ground_truth = Table(
    "ground_truth",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("instance", Integer, primary_key=True),
    Column("label", String(128)),
    Column("value", Float),
    # ``feedback`` (the route) or ``audit:<file name>``.
    Column("source", String(256), nullable=False),
    Column("ts", Float, nullable=False),
)
Index("ix_ground_truth_ts", ground_truth.c.ts)


def _v1(conn: Connection) -> None:
    """The first schema: predictions and ground truth."""
    metadata.create_all(conn, tables=[predictions, ground_truth])


MIGRATIONS: list[Callable[[Connection], None]] = [_v1]
"""Step ``i`` brings the schema from version ``i`` to ``i + 1``; append, never edit a released step."""
SCHEMA_VERSION = len(MIGRATIONS)


PAGE_SIZE = 16384


def database_url(url: str):
    """A SQLAlchemy URL for ``sqlite:///path`` or ``postgresql://...`` (driven by psycopg 3)."""
    try:
        u = make_url(url)
    except ArgumentError:
        raise ModelyardError(
            f"prediction log: '{url}' is not a database URL (sqlite:///path or postgresql://user@host/db)"
        ) from None
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return u.set(drivername="postgresql+psycopg")
    if u.drivername == "sqlite":
        if not u.database or u.database == ":memory:":
            raise ModelyardError("prediction log: a SQLite log needs a file: sqlite:///path/to/log.db")
        return u
    raise ModelyardError(f"prediction log: unsupported database '{u.drivername}' (sqlite or postgresql)")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    """WAL: readers (audits, the feedback route) do not block the writer thread, nor it them. Pages of 16 KiB
    (for a new file; an existing one keeps its own) hold a dozen logged rows of about 1.3 KB each, not three: a
    quarter of the page writes for the same rows."""
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA page_size={PAGE_SIZE}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def connect(url: str) -> Engine:
    """An engine for the log at ``url``, its schema created or migrated to :data:`SCHEMA_VERSION`."""
    u = database_url(url)
    kw = {"connect_args": {"connect_timeout": 10}} if u.drivername.startswith("postgresql") else {}
    engine = create_engine(u, pool_pre_ping=True, **kw)
    if u.drivername == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        migrate(engine)
    except SQLAlchemyError as e:
        engine.dispose()
        raise ModelyardError(
            f"prediction log {u.render_as_string(hide_password=True)}: "
            f"{str(e.orig) if getattr(e, 'orig', None) else e}".strip()
        ) from None
    return engine


def migrate(engine: Engine) -> int:
    """Apply the steps the database has not had; returns the schema version it is at."""
    with engine.begin() as conn:
        schema_version.create(conn, checkfirst=True)
        current = conn.execute(select(func.max(schema_version.c.version))).scalar() or 0
    if current > SCHEMA_VERSION:
        raise ModelyardError(
            f"prediction log: schema version {current} is newer than this modelyard's "
            f"({SCHEMA_VERSION}); upgrade modelyard"
        )
    for step in range(current, SCHEMA_VERSION):
        with engine.begin() as conn:
            MIGRATIONS[step](conn)
            conn.execute(insert(schema_version).values(version=step + 1))
        log.info("prediction log schema migrated", extra={"schema_version": step + 1})
    return SCHEMA_VERSION
