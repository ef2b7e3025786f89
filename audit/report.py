"""``modelyard audit report``: live quality of a model from its prediction log and ground truth, as
``report.json``, ``report.html`` and PNG figures in one folder (each file written atomically)."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

import numpy as np

from audit import drift, quality
from audit.store import manifest_of, predictions
from modelyard.errors import ModelyardError
from modelyard.repository import write_atomic
from modelyard.tasks import manifest_task


def build(
    engine,
    repo: Path,
    model: str,
    since: float | None,
    data_dir: Path | None = None,
    control: str | None = None,
    candidate: int | None = None,
) -> dict:
    """Every figure of the report, as JSON-ready data; with ``candidate``, that version against the serving
    ones on the audited rows it did not train on."""
    manifest, vdir = manifest_of(repo, model)
    task = manifest_task(manifest)
    regression = not task.predicts_labels
    primary = predictions(engine, model, since)
    if not primary:
        raise ModelyardError(
            f"the prediction log holds no prediction of '{model}'"
            + (" since then" if since else "")
            + "; is the server logging (--prediction-log)?"
        )
    shadow = predictions(engine, model, since, shadow=True)
    labelled = [r for r in primary + shadow if (r.truth_value if regression else r.truth_label) is not None]
    labelled_primary = [r for r in labelled if r.arm != "shadow"]
    report = {
        "model": model,
        "task": task.name,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "since": dt.datetime.fromtimestamp(since, dt.timezone.utc).isoformat() if since else None,
        "logged": len(primary),
        "labelled": len(labelled_primary),
        "metric": task.metric,
        "arms": quality.per_arm(labelled, regression) if labelled else [],
        "versions": quality.per_version(labelled, regression) if labelled_primary else [],
        "ab": quality.ab_outcome(labelled_primary, regression, control),
        "shadow": quality.shadow_outcome(primary, shadow, task) if shadow else [],
    }
    if not regression:
        report["labels"] = task.labels
        report["confusion"] = {arm: quality.confusion(rs, task.labels) for arm, rs in quality.by_arm(labelled).items()}
        from audit import stats

        report["calibration"] = {
            arm: stats.calibration(np.array([r.confidence for r in rs]), quality.correct(rs))
            for arm, rs in quality.by_arm(labelled).items()
        }
    if manifest.preprocessing.kind == "tabular":
        report["drift"] = drift.tabular_drift(
            primary,
            manifest.preprocessing.feature_names,
            drift.boston_training(data_dir) if model == "boston" else None,
        )
    else:
        report["drift"] = drift.text_drift(primary, manifest, vdir)
    if candidate is not None:
        from audit.candidate import compare

        report["candidate"] = compare(repo, model, candidate, labelled_primary, task)
    return report


def write(report: dict, out: Path) -> list[Path]:
    """report.json, the PNG figures and report.html into ``out``."""
    from audit import plots

    out.mkdir(parents=True, exist_ok=True)
    live_tokens = report["drift"].pop("live_tokens", None)
    files = plots.draw_all(report, live_tokens, out)
    write_atomic(out / "report.json", json.dumps(report, indent=2))
    write_atomic(out / "report.html", page(report, [f.name for f in files]))
    return [out / "report.json", out / "report.html", *files]


def _ci(d: dict, key: str) -> str:
    lo, hi = d["ci95"]
    return f"{d[key]:.4f} [{lo:.4f}, {hi:.4f}]"


def _table(head: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"


def page(r: dict, images: list[str]) -> str:
    metric = r["metric"]
    parts = [
        f"<h1>Live quality of {html.escape(r['model'])}</h1>",
        f"<p>{r['logged']} logged predictions, {r['labelled']} with ground truth"
        f"{' since ' + html.escape(r['since']) if r['since'] else ''}; generated {html.escape(r['generated_at'])}."
        f" Intervals are 95%: {'bootstrap' if metric == 'mae' else 'Wilson'}.</p>",
        "<h2>Per arm</h2>",
        _table(["arm", "n", f"{metric} [95% interval]"], [[a["arm"], a["n"], _ci(a, metric)] for a in r["arms"]]),
        "<h2>Per version</h2>",
        _table(
            ["version", "n", f"{metric} [95% interval]"],
            [[v["version"], v["n"], _ci(v, metric)] for v in r["versions"]],
        ),
    ]
    if r["ab"]:
        parts += [
            "<h2>A/B outcome (traffic split)</h2>",
            _table(
                [
                    "control",
                    "treatment",
                    "n (A, B)",
                    "difference B-A [95%]",
                    "p-value",
                    "test",
                    "labelled needed for a "
                    + ("1-point" if metric == "accuracy" else "1-unit")
                    + " difference (80% power)",
                    "more to label",
                ],
                [
                    [
                        r["ab"]["control"],
                        c["treatment"],
                        f"{c['n_control']}, {c['n_treatment']}",
                        _ci(c, "difference"),
                        f"{c['p_value']:.4g}",
                        c["test"],
                        c["labelled_needed"],
                        c["labelled_more"],
                    ]
                    for c in r["ab"]["comparisons"]
                ],
            ),
        ]
    for s in r["shadow"]:
        parts += [
            f"<h2>Shadow {html.escape(s['shadow'])} beside {html.escape(s['primary'])}</h2>",
            f"<p>agreement {_ci(s, 'agreement')} over {s['n']} requests; {s['disagreements']} disagree.</p>",
            _table(
                ["request id", "input", "primary", "shadow", "truth"],
                [
                    [d["request_id"], json.dumps(d["input"])[:300], d["primary"], d["shadow"], d["truth"]]
                    for d in s["disagreeing_inputs"]
                ],
            ),
        ]
    d = r["drift"]
    parts.append("<h2>Input drift</h2>")
    if d.get("kind") == "text" and d.get("n"):
        parts.append(
            _table(
                ["", "live", "training"],
                [
                    ["mean tokens per text", f"{d['tokens']['live_mean']:.1f}", d["tokens"]["training_mean"]],
                    ["out-of-vocabulary share", f"{d['oov_rate']['live_mean']:.4f}", d["oov_rate"]["training"]],
                ],
            )
        )
    elif d.get("psi"):
        parts.append(_table(["feature", "PSI"], [[f, f"{v:.3f}"] for f, v in d["psi"].items()]))
    elif d.get("note"):
        parts.append(f"<p>{html.escape(d['note'])}</p>")
    if r.get("candidate"):
        c = r["candidate"]
        parts += [
            f"<h2>Version {c['version']} against the serving version(s) {c['serving_versions']}</h2>",
            f"<p>on the {c['n']} audited predictions it did not train on ({c['excluded_trained_on']} it "
            f"trained on left out); {c['test']} p = {c['p_value']:.4g}</p>",
            _table(
                ["", f"{metric} [95% interval]"],
                [
                    ["serving (as logged)", _ci(c["serving"], metric)],
                    [f"version {c['version']}", _ci(c["new"], metric)],
                ],
            ),
        ]
    parts += [f'<p><img src="{html.escape(i)}" alt="{html.escape(i)}"></p>' for i in images]
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(r['model'])} live quality</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
