"""The prediction log: every answered request (or a sampled share) as rows in a database, with the input as the
client sent it, the output, the version, variant and arm that answered, and the latency; ground truth joins it
by request id (``serving/feedback.py``, ``modelyard audit import``). See README, "In the wild".

``schema``: tables and migrations; ``rows``: request -> rows; ``writer``: the bounded queue and writer thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serving.predlog.writer import PredictionLog


def open_log(settings, registry, metrics_registry) -> PredictionLog | None:
    """The server's prediction log from its settings (None when ``--prediction-log`` is not given): the database
    connected and migrated now, so a wrong URL is a startup error."""
    if not settings.prediction_log:
        return None
    from serving.predlog.schema import connect  # SQLAlchemy is imported only when the log is on
    from serving.predlog.writer import PredictionLog

    return PredictionLog(
        connect(settings.prediction_log),
        metrics_registry,
        registry.model_config,
        settings.log_sample_rate,
        settings.prediction_log_retention_days,
        settings.prediction_log_queue_size,
        live_window_s=settings.prediction_log_live_window_s,
    )
