"""Live quality from the log: per arm, accuracy or MAE with its interval, the confusion matrix and the
calibration of the probabilities; the A/B comparison of a traffic split's arms; a shadow's agreement."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from audit import stats
from audit.store import Logged

SHOWN_DISAGREEMENTS = 20


def correct(rows: list[Logged]) -> np.ndarray:
    return np.array([r.label == r.truth_label for r in rows], bool)


def errors(rows: list[Logged]) -> np.ndarray:
    return np.array([r.value - r.truth_value for r in rows], np.float64)


def by_arm(rows: list[Logged]) -> dict[str, list[Logged]]:
    out = defaultdict(list)
    for r in rows:
        out[r.arm_name].append(r)
    return dict(sorted(out.items()))


def figures(rows: list[Logged], regression: bool) -> dict:
    """Accuracy (Wilson interval) or MAE (bootstrap interval) of labelled rows."""
    if regression:
        return stats.mae(errors(rows))
    c = correct(rows)
    return stats.accuracy(int(c.sum()), len(c))


def per_arm(labelled: list[Logged], regression: bool) -> list[dict]:
    return [
        {
            "arm": arm,
            "version": rs[0].version,
            "variant": rs[0].variant,
            "shadow": rs[0].arm == "shadow",
            **figures(rs, regression),
        }
        for arm, rs in by_arm(labelled).items()
    ]


def per_version(labelled: list[Logged], regression: bool) -> list[dict]:
    versions = defaultdict(list)
    for r in labelled:
        if r.arm != "shadow":
            versions[r.version].append(r)
    return [{"version": v, **figures(rs, regression)} for v, rs in sorted(versions.items())]


def confusion(rows: list[Logged], labels: list[str]) -> list[list[int]]:
    """Counts, true label by row, predicted label by column."""
    index = {lab: i for i, lab in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), np.int64)
    for r in rows:
        m[index[r.truth_label], index[r.label]] += 1
    return m.tolist()


def ab_outcome(labelled: list[Logged], regression: bool, control: str | None) -> dict | None:
    """The traffic split's arms compared on ground truth: each arm against the control (the one named, else
    the lowest version, then variant), as B - A."""
    arms = by_arm([r for r in labelled if r.arm == "split"])
    if len(arms) < 2:
        return None
    names = sorted(arms, key=lambda a: (arms[a][0].version, arms[a][0].variant))
    a = control if control in arms else names[0]
    out = {"control": a, "comparisons": []}
    for b in (n for n in names if n != a):
        if regression:
            cmp = stats.compare_mae(errors(arms[a]), errors(arms[b]))
        else:
            cmp = stats.compare_accuracy(figures(arms[a], False), figures(arms[b], False))
        out["comparisons"].append({"treatment": b, "n_control": len(arms[a]), "n_treatment": len(arms[b]), **cmp})
    return out


def shadow_outcome(primary: list[Logged], shadow: list[Logged], task) -> list[dict]:
    """Per (primary arm, shadow arm): the agreement rate with its Wilson interval and the inputs where they
    disagreed (the shadow's answers are paired with the primary's by request id and instance)."""
    first = {(r.request_id, r.instance): r for r in primary}
    pairs = defaultdict(list)
    for s in shadow:
        p = first.get((s.request_id, s.instance))
        if p is not None:
            pairs[(p.arm_name, s.arm_name)].append((p, s))
    out = []
    for (pa, sa), ps in sorted(pairs.items()):
        y1 = np.array([_scores(p) for p, _ in ps])
        y2 = np.array([_scores(s) for _, s in ps])
        agree = task.agree(y1, y2)
        ci = stats.accuracy(int(agree.sum()), len(agree))
        shown = [
            {
                "request_id": p.request_id,
                "instance": p.instance,
                "input": json.loads(p.input or "null"),
                "primary": p.label if p.value is None else p.value,
                "shadow": s.label if s.value is None else s.value,
                "truth": p.truth_label if p.truth_value is None else p.truth_value,
            }
            for (p, s), ok in zip(ps, agree)
            if not ok
        ][:SHOWN_DISAGREEMENTS]
        out.append(
            {
                "primary": pa,
                "shadow": sa,
                "n": len(ps),
                "agreement": ci["accuracy"],
                "ci95": ci["ci95"],
                "disagreements": int((~agree).sum()),
                "disagreeing_inputs": shown,
            }
        )
    return out


def _scores(r: Logged) -> list[float]:
    """The raw output row again (what the task's agreement rule compares)."""
    out = json.loads(r.output)
    if "value" in out:
        return [out["value"]]
    s = out["scores"]
    return [s[1]] if len(s) == 2 else s
