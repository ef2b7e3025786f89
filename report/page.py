"""The stakeholder page of one evaluation: sections of HTML in plain words, the figures they show, and
``summary.json`` (the headline figures and the threshold used, which the console shows)."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modelyard.manifest import Manifest
from modelyard.tasks import TASKS
from report import figures
from report.evaluate import Evaluation
from report.numbers import BinaryRates, calibration, confusion, per_class, price_bands, threshold_sweep

FAILURES = 5
SHOWN_CHARS = 700


@dataclass
class Page:
    title: str
    sections: list[str] = field(default_factory=list)
    figures: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    """PNG file name -> the function that draws it there."""
    summary: dict = field(default_factory=dict)

    def figure(self, name: str, draw: Callable[[Path], None], caption: str) -> str:
        self.figures[name] = draw
        return f'<figure><img src="{name}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _e(text) -> str:
    return html.escape(str(text))


def _table(headers: list[str], rows: list[list], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cut(text: str) -> str:
    text = text.replace("<br />", " ")
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS].rsplit(" ", 1)[0] + " ..."


def _failures(title: str, rows: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<li><p class="score">{_e(score)}</p><blockquote>{_e(_cut(text))}</blockquote></li>' for score, text in rows
    )
    return f'<h3>{_e(title)}</h3><ol class="failures">{items}</ol>'


def _daily(per_day: int | None, noun: str, *counts: tuple[float, str]) -> str:
    """'If N reviews like these arrive every day, on average X would ... and Y would ...' (nothing without
    ``--per-day``); each count is (share of the test inputs, what happened to them)."""
    if not per_day:
        return ""
    what = " and ".join(f"<b>{per_day * share:,.0f} {_e(text)}</b>" for share, text in counts)
    return f'<p class="lead">If {per_day:,} {noun} like these arrive every day, on average {what}.</p>'


# ------------------------------------------------------------------ IMDB
def _binary(page: Page, ev: Evaluation, threshold: float, per_day: int | None) -> None:
    p, y = ev.outputs[:, 0], ev.y_true
    r = BinaryRates.at(p, y, threshold)
    fp, fn = r.per_1000(r.fp), r.per_1000(r.fn)
    negatives, positives = int(np.sum(y == 0)), int(np.sum(y == 1))
    page.summary.update(
        accuracy=r.accuracy,
        precision=r.precision,
        recall=r.recall,
        false_positive_rate=r.fpr,
        false_negative_rate=r.fnr,
        false_positives=r.fp,
        false_negatives=r.fn,
        false_positives_per_1000=fp,
        false_negatives_per_1000=fn,
    )
    page.sections.append(f"""<h2>In plain words</h2>
<p class="lead">On {ev.rows:,} movie reviews the model had never seen ({positives:,} positive, {negatives:,} negative),
it labelled <b>{r.accuracy:.1%}</b> correctly. A review is labelled positive when the model's probability is at least
<b>{threshold:g}</b> (the serving threshold).</p>
<p class="lead">With these settings, <b>of every 1,000 reviews, {fp} negative reviews would be flagged positive</b>
(false positives) <b>and {fn} positive reviews would be missed</b> (labelled negative: false negatives).</p>
{
        _daily(
            per_day,
            "reviews",
            (r.fp / r.n, "negative reviews would be flagged positive"),
            (r.fn / r.n, "positive reviews would be missed"),
        )
    }
<ul><li>Of every 1,000 negative reviews, {round(1000 * r.fpr)} are wrongly flagged positive
(false-positive rate {r.fpr:.1%}).</li>
<li>Of every 1,000 positive reviews, {round(1000 * r.fnr)} are missed (false-negative rate {r.fnr:.1%});
the other {round(1000 * r.recall)} are caught (recall {r.recall:.1%}).</li>
<li>Of every 1,000 reviews flagged positive, {round(1000 * r.precision)} really are positive
(precision {r.precision:.1%}).</li></ul>""")
    page.sections.append(_binary_figures(page, ev, r))
    page.sections.append(_binary_failures(ev, threshold))


def _binary_figures(page: Page, ev: Evaluation, r: BinaryRates) -> str:
    p, y, threshold = ev.outputs[:, 0], ev.y_true, r.threshold
    cm = np.array([[r.tn, r.fp], [r.fn, r.tp]])
    labels = ev.manifest.labels or ["negative", "positive"]
    sweep = threshold_sweep(p, y, np.linspace(0.01, 0.99, 99))
    cal = calibration(p, y == 1)
    page.summary["calibration_ece"] = cal.ece
    return (
        "<h2>Where it goes wrong</h2>"
        + page.figure(
            "confusion.png",
            lambda f: figures.confusion_matrix(cm, labels, f),
            f"Confusion matrix at threshold {threshold:g}: rows are the truth, columns what the model said.",
        )
        + "<p>Raising the threshold flags fewer reviews: fewer false positives, more misses. The dashed line is "
        "the threshold the server uses.</p>"
        + page.figure(
            "threshold.png",
            lambda f: figures.threshold_tradeoff(sweep, threshold, f),
            "Precision, recall and false-positive rate against the decision threshold.",
        )
        + f"<p>Calibration: of the reviews the model gives a probability of about 0.8, about 80% should be "
        f"positive. Expected calibration error {cal.ece:.3f} (0 is perfect).</p>"
        + page.figure(
            "calibration.png",
            lambda f: figures.reliability(
                cal, f, "predicted probability of 'positive'", "share of reviews really positive"
            ),
            "Reliability diagram: predicted probability against the share really positive; below, how many reviews "
            "fall in each bin.",
        )
    )


def _binary_failures(ev: Evaluation, threshold: float) -> str:
    p, y = ev.outputs[:, 0], ev.y_true
    worst_fp = [i for i in np.argsort(-p, kind="stable") if y[i] == 0 and p[i] >= threshold][:FAILURES]
    worst_fn = [i for i in np.argsort(p, kind="stable") if y[i] == 1 and p[i] < threshold][:FAILURES]
    return (
        "<h2>Real failures from the test set</h2><p>The reviews the model was most sure about and got wrong, "
        "with its probability that the review is positive.</p>"
        + _failures(
            "False positives: negative reviews flagged positive",
            [(f"probability positive {p[i]:.3f}", ev.shown[i]) for i in worst_fp],
        )
        + _failures(
            "False negatives: positive reviews missed",
            [(f"probability positive {p[i]:.3f}", ev.shown[i]) for i in worst_fn],
        )
    )


# ------------------------------------------------------------------ Reuters
def _multiclass(page: Page, ev: Evaluation, per_day: int | None) -> None:
    out, y = ev.outputs, ev.y_true
    labels = ev.manifest.labels or [str(i) for i in range(out.shape[1])]
    pred = out.argmax(axis=1)
    top3 = np.argsort(-out, axis=1)[:, :3]
    acc, acc3 = float(np.mean(pred == y)), float(np.mean((top3 == y[:, None]).any(axis=1)))
    stats = per_class(y, pred, len(labels))
    conf = out.max(axis=1)
    cal = calibration(conf, pred == y)
    page.summary.update(
        accuracy=acc, top3_accuracy=acc3, calibration_ece=cal.ece, wrong_topic_per_1000=round(1000 * (1 - acc))
    )
    page.sections.append(f"""<h2>In plain words</h2>
<p class="lead">On {ev.rows:,} Reuters newswires the model had never seen, it named the right topic (of
{len(labels)}) first for <b>{acc:.1%}</b>, and among its top three for <b>{acc3:.1%}</b>.</p>
<p class="lead">Of every 1,000 newswires, <b>{round(1000 * acc)} get the right topic</b>,
<b>{round(1000 * (1 - acc))} a wrong one</b>; for {round(1000 * (acc3 - acc))} of those the right topic is the
second or third suggestion.</p>
{_daily(per_day, "newswires", (1 - acc, "would get a wrong topic"))}""")
    rows = [
        [labels[i], int(stats["support"][i]), _pct(stats["precision"][i]), _pct(stats["recall"][i])]
        for i in np.argsort(-stats["support"], kind="stable")
        if stats["support"][i] > 0
    ]
    cm = confusion(y, pred, len(labels))
    page.sections.append(
        "<h2>Per topic</h2><p>Precision: of the newswires the model put in a topic, the share "
        "that belong there. Recall: of a topic's newswires, the share the model found. Rare "
        "topics have few test newswires, so their figures are rough.</p>"
        + page.figure(
            "per_topic.png",
            lambda f: figures.per_topic(labels, stats["precision"], stats["recall"], stats["support"], f),
            "Per-topic precision and recall, most frequent topics first.",
        )
        + _table(["topic", "test newswires", "precision", "recall"], rows, "topics")
        + page.figure(
            "confusion.png",
            lambda f: figures.confusion_matrix(cm, labels, f, False),
            "Confusion matrix over all topics (log colour scale).",
        )
    )
    page.sections.append(
        f"<h2>Calibration</h2><p>When the model is 90% sure of a topic, it should be right about "
        f"90% of the time. Expected calibration error {cal.ece:.3f}.</p>"
        + page.figure(
            "calibration.png",
            lambda f: figures.reliability(cal, f, "the model's confidence in its first topic", "share right"),
            "Reliability of the first topic's probability.",
        )
    )
    wrong = [i for i in np.argsort(-conf, kind="stable") if pred[i] != y[i]][:FAILURES]
    page.sections.append(
        "<h2>Real failures from the test set</h2><p>The newswires (decoded from the dataset's "
        "word ids; '?' marks a word outside the vocabulary) the model was most sure about and "
        "got wrong.</p>"
        + _failures(
            "Confident wrong topics",
            [
                (f"said {labels[pred[i]]} ({conf[i]:.3f}); truth {labels[y[i]]} ({out[i, y[i]]:.3f})", ev.shown[i])
                for i in wrong
            ],
        )
    )


def _pct(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{x:.0%}"


# ------------------------------------------------------------------ Boston
def _regression(page: Page, ev: Evaluation, per_day: int | None) -> None:
    pred, y = ev.outputs[:, 0], ev.y_true
    err = np.abs(pred - y)
    mae, rmse = float(err.mean()), float(np.sqrt(np.mean((pred - y) ** 2)))
    within2, over5 = float(np.mean(err <= 2)), float(np.mean(err > 5))
    bands = price_bands(y, pred)
    page.summary.update(
        mae=mae, rmse=rmse, within_2k_per_1000=round(1000 * within2), off_by_over_5k_per_1000=round(1000 * over5)
    )
    page.sections.append(f"""<h2>In plain words</h2>
<p class="lead">On {ev.rows} Boston neighbourhoods the model had never seen (a small test set: read the figures as
rough), its price was off by <b>${1000 * mae:,.0f}</b> on average (median house price in the data: about
${1000 * float(np.median(y)):,.0f}).</p>
<p class="lead">Of every 1,000 houses, <b>{round(1000 * within2)} would be priced within $2,000</b> and
<b>{round(1000 * over5)} off by more than $5,000</b>.</p>
{_daily(per_day, "houses", (over5, "would be priced more than $5,000 off"))}""")
    rows = [[b["band"], b["houses"], _money(b["mae"]), _money(b["bias"], signed=True)] for b in bands]
    page.sections.append(
        "<h2>Error by price band</h2>"
        + page.figure(
            "price_bands.png",
            lambda f: figures.price_bands(bands, f),
            "Mean absolute and mean signed error by true price band.",
        )
        + _table(["true price", "houses", "mean error (absolute)", "mean error (+: over-priced)"], rows)
        + "<h2>Residuals and calibration</h2><p>Points on the dotted line are priced exactly; a slope in the "
        "residuals means the model over- or under-prices a whole price range.</p>"
        + page.figure(
            "residuals.png",
            lambda f: figures.residuals(y, pred, f),
            "Predicted against true price, and residuals against the predicted price.",
        )
    )
    worst = np.argsort(-err, kind="stable")[:FAILURES]
    names = ev.manifest.preprocessing.feature_names
    rows = [
        [
            _money(y[i]),
            _money(pred[i]),
            _money(pred[i] - y[i], signed=True),
            ", ".join(f"{n} {v:g}" for n, v in zip(names, ev.shown[i])),
        ]
        for i in worst
    ]
    page.sections.append(
        "<h2>Real failures from the test set</h2><p>The houses priced worst, with their "
        "features.</p>" + _table(["true price", "predicted", "error", "features"], rows)
    )


def _money(k: float, signed: bool = False) -> str:
    if np.isnan(k):
        return "n/a"
    return f"{'+' if signed and k >= 0 else '-' if k < 0 else ''}${abs(1000 * k):,.0f}"


# ------------------------------------------------------------------ shared
def _variants(page: Page, manifest: Manifest) -> None:
    rows = [
        [
            n,
            r.format,
            f"{r.size_bytes / 1024:,.1f}",
            f"{r.gzip_bytes / 1024:,.1f}",
            f"{r.value:.4f}",
            f"{r.delta:+.4f}",
            "" if r.latency_ms_b1 is None else f"{r.latency_ms_b1:.3f}",
            "" if r.latency_ms_b64 is None else f"{r.latency_ms_b64:.3f}",
            r.status,
        ]
        for n, r in manifest.variants.items()
    ]
    metric = next(iter(manifest.variants.values())).metric if manifest.variants else "metric"
    page.sections.append(
        "<h2>Export variants: size, quality, speed</h2><p>Every variant was validated on the "
        "full test set at export (figures from the version's manifest; latency: median "
        "milliseconds per call in-process). Smaller files download and load faster; quantized "
        "ones may lose a little quality.</p>"
        + page.figure(
            "variants.png",
            lambda f: figures.variants(manifest, f),
            "Gzip size against test quality; labels give batch-1 latency.",
        )
        + _table(
            ["variant", "format", "KiB", "gzip KiB", metric, "change vs Keras", "ms batch 1", "ms batch 64", "status"],
            rows,
        )
    )


def build(ev: Evaluation, threshold: float, threshold_source: str, per_day: int | None = None) -> Page:
    m = ev.manifest
    task = TASKS[m.task]
    page = Page(f"{m.name} v{m.version}: what the model does well and badly")
    page.summary = {
        "model": m.name,
        "version": m.version,
        "variant": ev.variant,
        "test_rows": ev.rows,
        "threshold": threshold if task.thresholded else None,
    }
    if task.thresholded:
        _binary(page, ev, threshold, per_day)
    elif task.predicts_labels:
        _multiclass(page, ev, per_day)
    else:
        _regression(page, ev, per_day)
    _variants(page, m)
    where = f"The serving threshold {threshold:g} comes from {threshold_source}. " if task.thresholded else ""
    page.sections.append(
        f"<h2>How this report was made</h2><p>Predictions of the exported <code>{_e(ev.variant)}"
        f"</code> file (what the server runs), made with onnxruntime on the full real test split "
        f"({ev.rows:,} rows, {ev.seconds:.1f} s). {_e(where)}Model trained "
        f"{_e(m.created_at)} from {_e(m.dataset.name)} ({m.dataset.train_size:,} training rows).</p>"
    )
    return page


STYLE = """body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}.lead{font-size:1.1em}
figure{margin:1em 0}img{max-width:100%}figcaption{color:#555;font-size:.9em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}blockquote{margin:.3em 0 1em;padding:.4em .8em;background:#f8f8f8;border-left:3px solid #bbb}
.score{margin:.2em 0;font-weight:600}"""


def render(page: Page) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(page.title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body><h1>{_e(page.title)}</h1>{''.join(page.sections)}</body></html>\n"
    )
