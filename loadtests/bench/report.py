"""The benchmark's results: a table (printed, and as markdown for the README), JSON, and a PNG."""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.bench.run import Measurement, summarise


def _spread(s: dict | None, fmt: str = "{:,.0f}") -> str:
    if s is None:
        return "-"
    if s["n"] == 1 or s["min"] == s["max"]:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def summary(
    results: dict[str, list[Measurement]],
    titles: dict[str, str],
    roles: dict[str, str],
    target_ms: float,
    engine: list[dict] | None,
    protocols: dict[str, str] | None = None,
) -> list[dict]:
    """One row per server: medians and spreads over rounds, ratios of medians to baseline and ceilings (the
    HTTP ceiling for every row, whatever its protocol, so the column means the same on every row)."""
    rows = []
    for key, ms in results.items():
        best = [m.best(target_ms) for m in ms]
        ok = [m for m in ms if m.error is None]
        rows.append(
            {
                "server": key,
                "title": titles[key],
                "role": roles[key],
                "protocol": (protocols or {}).get(key, "tfs"),
                "rps_at_p99_target": summarise([b.rps if b else 0.0 for b, m in zip(best, ms) if m.error is None]),
                "peak_rps": summarise([max(p.rps for p in m.sweep) for m in ok if m.sweep]),
                "lowest_p99_ms": summarise([min(p.p99_ms for p in m.sweep) for m in ok if m.sweep]),
                "connections_at_best": [b.connections if b else None for b in best],
                "p50_ms_at_rate": summarise([m.fixed_rate.p50_ms for m in ok if m.fixed_rate]),
                "p99_ms_at_rate": summarise([m.fixed_rate.p99_ms for m in ok if m.fixed_rate]),
                "failed_at_rate": sum(m.fixed_rate.failed for m in ok if m.fixed_rate),
                "dropped_at_rate": sum(m.fixed_rate.dropped for m in ok if m.fixed_rate),
                "cpu_cores_at_best": summarise([b.cpu_cores for b in best if b]),
                "errors_in_sweep": sum(p.errors for m in ok for p in m.sweep),
                "mean_batch_rows": summarise([m.mean_batch_rows for m in ok if m.mean_batch_rows]),
                "failures": [m.error for m in ms if m.error],
            }
        )

    def median(role_or_key: str) -> float | None:
        r = next((r for r in rows if r["server"] == role_or_key or r["role"] == role_or_key), None)
        return r["rps_at_p99_target"]["median"] if r and r["rps_at_p99_target"] else None

    base, http = median("baseline"), median("ceiling")
    for r in rows:
        v = r["rps_at_p99_target"]["median"] if r["rps_at_p99_target"] else None
        r["x_baseline"] = round(v / base, 2) if v and base else None
        r["of_http_ceiling"] = round(v / http, 2) if v and http else None
        if engine and r["role"] == "modelyard":
            rows_per_batch = (r["mean_batch_rows"] or {}).get("median") or 1
            e = min(engine, key=lambda e: abs(e["batch"] - rows_per_batch))
            r["engine_ceiling"] = {"batch": e["batch"], "rows_per_s": e["rows_per_s"]}
            r["of_engine_ceiling"] = round(v / e["rows_per_s"], 3) if v else None
    return rows


def markdown(rows: list[dict], target_ms: float, rate: float) -> str:
    head = (
        f"| server | req/s at p99 ≤ {target_ms:g} ms | × baseline | of HTTP ceiling | of engine ceiling | "
        f"p50 / p99 ms at {rate:,.0f} req/s | server CPU (cores) | errors | not sent at {rate:,.0f} req/s |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        eng = (
            (
                f"{r['of_engine_ceiling']:.1%} (b{r['engine_ceiling']['batch']}: "
                f"{r['engine_ceiling']['rows_per_s']:,.0f} rows/s)"
            )
            if r.get("of_engine_ceiling")
            else "-"
        )
        lat = (
            f"{_spread(r['p50_ms_at_rate'], '{:.2f}')} / {_spread(r['p99_ms_at_rate'], '{:.2f}')}"
            if r["p50_ms_at_rate"]
            else "-"
        )
        xb = f"{r['x_baseline']:.2f}×" if r["x_baseline"] is not None else "-"
        http = f"{r['of_http_ceiling']:.0%}" if r["of_http_ceiling"] else "-"
        errors = str(r["errors_in_sweep"] + r["failed_at_rate"])
        if r["failures"]:
            errors += " (" + "; ".join(r["failures"]) + ")"
        rps = _spread(r["rps_at_p99_target"])
        if r["rps_at_p99_target"] and r["rps_at_p99_target"]["max"] == 0 and r["peak_rps"]:
            rps = f"none (lowest p99 {r['lowest_p99_ms']['min']:.0f} ms; peak {r['peak_rps']['max']:,.0f} req/s)"
        lines.append(
            f"| {r['title']} | {rps} | {xb} | {http} | {eng} | {lat} | "
            f"{_spread(r['cpu_cores_at_best'], '{:.2f}')} | {errors} | {r['dropped_at_rate']} |"
        )
    return head + "\n".join(lines) + "\n"


def _short(row: dict) -> str:
    """A bar label: the title before its parenthesis or colon, and the protocol where it is not TF Serving."""
    name = row["title"].split(" (")[0].split(":")[0]
    extra = {"v2-rest": " V2 REST", "v2-grpc": " V2 gRPC"}.get(row.get("protocol", "tfs"), "")
    return name if row["role"] == "grpc-ceiling" else name + extra


def bodies_line(body_bytes: dict[str, int], used: list[str], paths: dict[str, Path]) -> str:
    """What the requests carried, per protocol in use (mean bytes), and the V2 padding where there is one."""
    names = {"tfs": "TF Serving JSON", "v2-rest": "V2 REST JSON", "v2-grpc": "V2 gRPC (raw_input_contents)"}
    parts = [f"{names[p]} {body_bytes[p]:,}" for p in used if p in body_bytes]
    line = "Mean body bytes: " + ", ".join(parts) + "." if parts else ""
    if any(p != "tfs" for p in used) and paths.get("v2-rest"):
        first = json.loads(Path(paths["v2-rest"]).read_text().split("\n", 1)[0])["inputs"][0]
        if first["name"] == "ids":
            line += (
                f" V2 token ids are padded with 0 to {first['shape'][1]:,} (the longest review sent) so that "
                "every request has one shape: MLServer's adaptive batching concatenates requests' tensors."
            )
    return line


def plot(results: dict[str, list[Measurement]], rows: list[dict], target_ms: float, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 5.5))
    names = [_short(r) for r in rows]
    med = [r["rps_at_p99_target"]["median"] if r["rps_at_p99_target"] else 0 for r in rows]
    lo = [m - r["rps_at_p99_target"]["min"] if r["rps_at_p99_target"] else 0 for m, r in zip(med, rows)]
    hi = [r["rps_at_p99_target"]["max"] - m if r["rps_at_p99_target"] else 0 for m, r in zip(med, rows)]
    colors = {
        "modelyard": "tab:green",
        "baseline": "tab:red",
        "peer": "tab:orange",
        "ceiling": "tab:gray",
        "grpc-ceiling": "silver",
    }
    a.barh(names, med, xerr=[lo, hi], color=[colors[r["role"]] for r in rows], capsize=4)
    a.invert_yaxis()
    a.set_xlabel(f"requests/s with p99 ≤ {target_ms:g} ms (median of rounds, bars: min–max)")
    for key, ms in results.items():
        m = next((m for m in ms if m.error is None and m.sweep), None)
        if m is not None:
            b.plot([p.rps for p in m.sweep], [p.p99_ms for p in m.sweep], marker="o", label=key)
    b.axhline(target_ms, color="k", ls="--", lw=1)
    b.set_yscale("log")
    b.set_xlabel("throughput (req/s), one point per connection count")
    b.set_ylabel("p99 latency (ms), first round")
    b.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(out: Path, payload: dict) -> Path:
    path = out / "bench.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=lambda o: o.__dict__))
    tmp.replace(path)
    return path
