"""Reading the prediction log for audits: logged primary predictions, with their ground truth when they have one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, and_, select

from modelyard.errors import ModelyardError
from modelyard.tasks import manifest_task
from serving.predlog import schema


def parse_since(text: str | None) -> float | None:
    """``--since``: an ISO date or date-time (UTC unless it says otherwise) -> Unix time."""
    if text is None:
        return None
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ModelyardError(f"--since: '{text}' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


def open_log(url: str | None) -> Engine:
    if not url:
        raise ModelyardError(
            "no prediction log: give --prediction-log URL (env MODELYARD_PREDICTION_LOG), the "
            "database the server logs to"
        )
    return schema.connect(url)


@dataclass
class Logged:
    """One logged prediction (a request's instance) and its ground truth, if any."""

    request_id: str
    instance: int
    ts: float
    version: int
    variant: str
    arm: str
    input: str | None
    output: str
    label: str | None
    confidence: float | None
    value: float | None
    truth_label: str | None = None
    truth_value: float | None = None
    truth_source: str | None = None

    @property
    def arm_name(self) -> str:
        """The arm in reports: the version and variant that answered (``shadow:`` for a shadow's answers)."""
        return f"{'shadow:' if self.arm == 'shadow' else ''}v{self.version}/{self.variant}"


def predictions(
    engine: Engine, model: str, since: float | None = None, labelled: bool | None = None, shadow: bool = False
) -> list[Logged]:
    """Logged predictions of ``model`` (primary rows, or shadow rows), oldest first; ``labelled``: only those
    with (True) or without (False) ground truth."""
    p, g = schema.predictions, schema.ground_truth
    on = and_(g.c.model == p.c.model, g.c.request_id == p.c.request_id, g.c.instance == p.c.instance)
    q = (
        select(
            p.c.request_id,
            p.c.instance,
            p.c.ts,
            p.c.version,
            p.c.variant,
            p.c.arm,
            p.c.input,
            p.c.output,
            p.c.label,
            p.c.confidence,
            p.c.value,
            g.c.label,
            g.c.value,
            g.c.source,
        )
        .select_from(p.outerjoin(g, on))
        .where(p.c.model == model, (p.c.arm == "shadow") if shadow else (p.c.arm != "shadow"))
        .order_by(p.c.ts, p.c.id)
    )
    if since is not None:
        q = q.where(p.c.ts >= since)
    if labelled is True:
        q = q.where(g.c.request_id.is_not(None))
    elif labelled is False:
        q = q.where(g.c.request_id.is_(None))
    with engine.connect() as conn:
        return [Logged(*row) for row in conn.execute(q)]


def manifest_of(repo, model: str, version: int | None = None):
    """The manifest of a model version in the repository (the latest by default), and its directory."""
    from modelyard.manifest import MANIFEST_FILE, Manifest
    from modelyard.repository import ModelRepository

    r = ModelRepository(repo)
    if model not in r.model_names():
        raise ModelyardError(f"unknown model '{model}' (models in {repo}: {', '.join(r.model_names()) or 'none'})")
    vdir = r.path(model, r.resolve(model, version))
    return Manifest.read(vdir / MANIFEST_FILE), vdir


def task_of(repo, model: str):
    """What the model predicts (labels or a value), from its latest manifest in the repository."""
    m, _ = manifest_of(repo, model)
    return manifest_task(m)
