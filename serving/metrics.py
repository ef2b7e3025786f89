"""Prometheus metrics. Names say what they count; the Grafana dashboard in deploy/ reads them."""

from __future__ import annotations

import numpy as np
import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """All serving metrics on one registry (a fresh one per app, so tests can build several apps).

    With several workers (``PROMETHEUS_MULTIPROC_DIR`` set by the supervisor, :mod:`serving.workers`), every
    process writes its values to files there and :attr:`exposition` sums them across processes: counters and
    histograms keep the counts of a worker that died; each gauge says how it combines (``multiprocess_mode``).
    """

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self.requests = Counter(
            "modelyard_requests_total",
            "Requests by model, version, variant, route, protocol (rest, grpc) and status",
            ["model", "version", "variant", "route", "protocol", "status"],
            registry=r,
        )
        self.request_latency = Histogram(
            "modelyard_request_duration_seconds",
            "Time from request received to answer ready, by model, route and protocol",
            ["model", "route", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "modelyard_queue_wait_seconds",
            "Time a request waited for its batch to start",
            ["model", "version", "variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "modelyard_inference_duration_seconds",
            "Model run time per batch",
            ["model", "version", "variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "modelyard_batch_size_rows",
            "Rows per model batch",
            ["model", "version", "variant"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "modelyard_requests_in_flight", "HTTP requests being handled now", registry=r, multiprocess_mode="livesum"
        )
        self.queue_depth = Gauge(
            "modelyard_queue_depth_requests",
            "Requests waiting for a batch, by model",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.load_failures = Counter(
            "modelyard_model_load_failures_total",
            "Model versions that failed to verify, load or warm up",
            ["model", "version"],
            registry=r,
        )
        self.loaded = Gauge(
            "modelyard_model_loaded",
            "1 for each loaded model version and variant, with the device it actually runs on",
            ["model", "version", "variant", "runtime", "device"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.provider_info = Gauge(
            "modelyard_model_provider_info",
            "1 for each loaded model version and variant, with the onnxruntime execution provider it actually runs on",
            ["model", "version", "variant", "provider"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.gpu_memory_used = Gauge(
            "modelyard_gpu_memory_used_bytes",
            "Memory in use on a GPU that models run on, by every process (NVML, read at scrape)",
            ["gpu", "name"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.gpu_memory_total = Gauge(
            "modelyard_gpu_memory_total_bytes",
            "Memory of a GPU that models run on (NVML, read at scrape)",
            ["gpu", "name"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.ready = Gauge(
            "modelyard_server_ready",
            "1 when every model is loaded and warmed up",
            registry=r,
            multiprocess_mode="livemin",
        )
        # what the models predict
        self.predicted_labels = Counter(
            "modelyard_predictions_total",
            "Predicted labels (IMDB sentiment, Reuters top topic)",
            ["model", "label"],
            registry=r,
        )
        self.predicted_price = Histogram(
            "modelyard_predicted_price_thousands",
            "Boston predicted median home value in $1000s",
            ["model"],
            buckets=(5, 10, 15, 20, 25, 30, 35, 40, 45, 50),
            registry=r,
        )
        # input drift against training statistics
        self.feature_zscore = Gauge(
            "modelyard_feature_drift_zscore",
            "Exponentially weighted mean of (value - training mean) / training std, per "
            "feature; |z| > 1 means live inputs drifted",
            ["model", "feature"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.text_tokens = Histogram(
            "modelyard_input_text_tokens",
            "Tokens per raw text input",
            ["model"],
            buckets=(5, 10, 25, 50, 100, 200, 400, 800, 1600),
            registry=r,
        )
        self.text_oov = Histogram(
            "modelyard_input_oov_ratio",
            "Share of a raw text's tokens outside the vocabulary",
            ["model"],
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
            registry=r,
        )
        self.train_text_tokens = Gauge(
            "modelyard_training_mean_text_tokens",
            "Mean tokens per text in training",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.train_oov = Gauge(
            "modelyard_training_oov_ratio",
            "Out-of-vocabulary share in training",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        # shadow mode
        self.shadow = Counter(
            "modelyard_shadow_comparisons_total",
            "Requests mirrored to a shadow candidate, by whether its answer agreed with the primary",
            ["model", "primary", "candidate", "agreed"],
            registry=r,
        )
        self.shadow_agreement = Gauge(
            "modelyard_shadow_agreement_ratio",
            "Share of mirrored requests where the candidate agreed with the primary",
            ["model", "primary", "candidate"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.shadow_errors = Counter(
            "modelyard_shadow_errors_total",
            "Mirrored requests that failed on the candidate",
            ["model", "candidate"],
            registry=r,
        )
        self.multiprocess = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        self.exposition = r
        """The registry ``/metrics`` reads: this one, or with workers the sum over every worker's files."""
        if self.multiprocess:
            self.exposition = CollectorRegistry()
            MultiProcessCollector(self.exposition)
        self._in_flight: Callable[[], int] = lambda: 0
        self._ewma: dict[str, np.ndarray] = {}
        self._children: dict[tuple, object] = {}
        self._shadow_counts: dict[tuple, list[int]] = {}

    def track_in_flight(self, count: Callable[[], int]) -> None:
        """The in-flight gauge reads ``count`` at scrape; with workers, at each :meth:`sample_in_flight`
        (a process cannot call another's function)."""
        if self.multiprocess:
            self._in_flight = count
        else:
            self.in_flight.set_function(count)

    def sample_in_flight(self) -> None:
        if self.multiprocess:
            self.in_flight.set(self._in_flight())

    def child(self, metric, *labels: str):
        """``metric.labels(*labels)``, cached: prometheus_client validates and locks on every ``labels`` call,
        which costs more per request than the model does here. Only for series that are never removed."""
        key = (metric, labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def observe_outputs(self, model: str, codec, y: np.ndarray) -> None:
        if codec.task.thresholded:
            if len(y) == 1:  # the common request: one row, no array work
                self.child(
                    self.predicted_labels, model, codec.labels[int(float(y[0, 0]) >= codec.task.threshold)]
                ).inc()
                return
            pos = int(np.count_nonzero(y[:, 0] >= codec.task.threshold))
            if pos:
                self.child(self.predicted_labels, model, codec.labels[1]).inc(pos)
            if len(y) - pos:
                self.child(self.predicted_labels, model, codec.labels[0]).inc(len(y) - pos)
        elif codec.task.predicts_labels:
            labels = codec.labels
            idx, counts = np.unique(np.argmax(y, axis=1), return_counts=True)
            for i, c in zip(idx.tolist(), counts.tolist()):
                self.child(self.predicted_labels, model, labels[i]).inc(c)
        else:
            h = self.child(self.predicted_price, model)
            for v in y[:, 0].tolist():
                h.observe(v)

    def observe_inputs(self, model: str, codec, decoded) -> None:
        if codec.kind == "tabular":
            stats = codec.manifest.preprocessing.feature_stats
            if not stats:
                return
            mean = np.array([stats[f].mean if f in stats else 0.0 for f in codec.feature_names])
            std = np.array([stats[f].std if f in stats and stats[f].std > 0 else 1.0 for f in codec.feature_names])
            z = ((decoded.x - mean) / std).mean(axis=0)
            prev = self._ewma.get(model)
            alpha = min(1.0, 0.05 * len(decoded.x))
            cur = z if prev is None else (1 - alpha) * prev + alpha * z
            self._ewma[model] = cur
            for f, v in zip(codec.feature_names, cur.tolist()):
                self.feature_zscore.labels(model, f).set(v)
        elif decoded.text_tokens:
            th, oh = self.text_tokens.labels(model), self.text_oov.labels(model)
            for t, o in zip(decoded.text_tokens, decoded.text_oov):
                th.observe(t)
                oh.observe(o)

    def observe_shadow(self, model: str, primary: str, candidate: str, agreed: int, total: int) -> None:
        if agreed:
            self.shadow.labels(model, primary, candidate, "true").inc(agreed)
        if total - agreed:
            self.shadow.labels(model, primary, candidate, "false").inc(total - agreed)
        c = self._shadow_counts.setdefault((model, primary, candidate), [0, 0])
        c[0] += agreed
        c[1] += total
        self.shadow_agreement.labels(model, primary, candidate).set(c[0] / c[1])
