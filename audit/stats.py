"""The statistics of an audit, from statsmodels and scipy: intervals for accuracy (Wilson) and MAE
(bootstrap), the A/B comparison of two arms (two-proportion z-test, Welch's t-test), and the labelled
requests needed to detect a given difference."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

ALPHA = 0.05
POWER = 0.8
BOOTSTRAP_RESAMPLES = 2000
SEED = 113


def accuracy(correct: int, n: int) -> dict:
    """Accuracy with its 95% Wilson interval."""
    lo, hi = proportion_confint(correct, n, alpha=ALPHA, method="wilson")
    return {"n": n, "correct": correct, "accuracy": correct / n, "ci95": [float(lo), float(hi)], "interval": "wilson"}


def mae(errors: np.ndarray) -> dict:
    """Mean absolute error with its 95% bootstrap (BCa) interval."""
    errors = np.abs(np.asarray(errors, np.float64))
    if len(errors) < 2:
        return {"n": len(errors), "mae": float(errors.mean()), "ci95": [math.nan, math.nan], "interval": "bootstrap"}
    ci = sps.bootstrap(
        (errors,),
        np.mean,
        confidence_level=1 - ALPHA,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="BCa",
        rng=np.random.default_rng(SEED),
    ).confidence_interval
    return {
        "n": len(errors),
        "mae": float(errors.mean()),
        "ci95": [float(ci.low), float(ci.high)],
        "interval": "bootstrap",
    }


def compare_accuracy(a: dict, b: dict, detect: float = 0.01) -> dict:
    """Arm B against arm A: the difference in accuracy (B - A) with its 95% interval (Newcombe), the
    two-proportion z-test's p-value, and how many more labelled requests (both arms together, split as now)
    would detect a difference of ``detect`` at 80% power."""
    ca, na, cb, nb = a["correct"], a["n"], b["correct"], b["n"]
    _, p_value = proportions_ztest([cb, ca], [nb, na])
    lo, hi = confint_proportions_2indep(cb, nb, ca, na, method="newcomb", compare="diff", alpha=ALPHA)
    pa = ca / na
    target = pa + detect if pa + detect <= 1 else pa - detect
    effect = abs(proportion_effectsize(target, pa))
    ratio = nb / na
    n_a = NormalIndPower().solve_power(effect_size=effect, alpha=ALPHA, power=POWER, ratio=ratio)
    needed = math.ceil(n_a) + math.ceil(n_a * ratio)
    return {
        "metric": "accuracy",
        "difference": cb / nb - pa,
        "ci95": [float(lo), float(hi)],
        "p_value": float(p_value),
        "test": "two-proportion z-test",
        "detectable_difference": detect,
        "labelled_needed": needed,
        "labelled_more": max(0, needed - na - nb),
    }


def compare_mae(err_a: np.ndarray, err_b: np.ndarray, detect: float = 1.0) -> dict:
    """Arm B against arm A on absolute errors: the difference in MAE (B - A) with its 95% bootstrap interval,
    Welch's t-test, and the labelled requests that would detect a difference of ``detect`` (in the target's
    unit) at 80% power."""
    ea, eb = np.abs(np.asarray(err_a, np.float64)), np.abs(np.asarray(err_b, np.float64))
    t = sps.ttest_ind(eb, ea, equal_var=False)
    ci = sps.bootstrap(
        (eb, ea),
        lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis),
        confidence_level=1 - ALPHA,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(SEED),
    ).confidence_interval
    sd = math.sqrt((ea.var(ddof=1) + eb.var(ddof=1)) / 2)
    ratio = len(eb) / len(ea)
    n_a = TTestIndPower().solve_power(effect_size=detect / sd, alpha=ALPHA, power=POWER, ratio=ratio) if sd > 0 else 2.0
    needed = math.ceil(n_a) + math.ceil(n_a * ratio)
    return {
        "metric": "mae",
        "difference": float(eb.mean() - ea.mean()),
        "ci95": [float(ci.low), float(ci.high)],
        "p_value": float(t.pvalue),
        "test": "Welch's t-test",
        "detectable_difference": detect,
        "labelled_needed": needed,
        "labelled_more": max(0, needed - len(ea) - len(eb)),
    }


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected``, on ``expected``'s deciles (the usual
    reading: < 0.1 stable, 0.1-0.25 some shift, > 0.25 a large shift)."""
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> dict:
    """Reliability of the predicted label's probability: per probability bin, the mean probability and the
    share that was right; and the expected calibration error (their gap, weighted by bin size)."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            conf, acc = float(confidence[m].mean()), float(correct[m].mean())
            rows.append(
                {
                    "bin": [float(edges[b]), float(edges[b + 1])],
                    "n": int(m.sum()),
                    "mean_probability": conf,
                    "accuracy": acc,
                }
            )
            ece += m.sum() / len(confidence) * abs(acc - conf)
    return {"bins": rows, "expected_calibration_error": float(ece)}
