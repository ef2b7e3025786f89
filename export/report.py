"""export_report.md (the table), export_report.png (metric against size, latency by variant) and the
rich summary table printed at the end of a run."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from export.variants import VARIANTS
from modelyard.manifest import Manifest

REPORT_MD, REPORT_PNG = "export_report.md", "export_report.png"


def ordered(manifest: Manifest) -> list[tuple[str, object]]:
    order = list(VARIANTS)
    return sorted(manifest.variants.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)


def _ratio(manifest: Manifest, rec) -> str:
    base = manifest.variants.get("tflite_fp32")
    if base is None or not base.size_bytes:
        return ""
    return f"{100 * rec.size_bytes / base.size_bytes:.1f}% / {base.size_bytes / max(rec.gzip_bytes, 1):.1f}x"


def rows(manifest: Manifest) -> list[list[str]]:
    out = []
    for name, r in ordered(manifest):
        out.append(
            [
                name,
                r.metric,
                f"{r.value:.4f}",
                f"{r.delta:+.4f}",
                f"{r.max_abs_diff:.2e}",
                f"{r.size_bytes / 1024:.1f}",
                f"{r.gzip_bytes / 1024:.1f}",
                _ratio(manifest, r),
                f"{r.sparsity:.1%}",
                "" if r.latency_ms_b1 is None else f"{r.latency_ms_b1:.3f}",
                "" if r.latency_ms_b64 is None else f"{r.latency_ms_b64:.3f}",
                r.status + (f": {r.reason}" if r.reason else ""),
            ]
        )
    return out


HEADERS = [
    "variant",
    "metric",
    "value",
    "delta",
    "max abs diff",
    "KiB",
    "gzip KiB",
    "size vs tflite_fp32 / gzip shrink",
    "sparsity",
    "ms b1",
    "ms b64",
    "status",
]


def markdown(manifest: Manifest) -> str:
    lines = [
        f"# Export report: {manifest.name} v{manifest.version}",
        "",
        f"Every variant evaluated on the full real test set ({manifest.dataset.test_size} rows) with its "
        "own runtime; delta and max abs diff against the float Keras model. Latency: median in-process "
        "milliseconds per call. Rejected: more than 1 accuracy point lost, or MAE up more than 5%.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows(manifest)]
    extra = []
    for name, r in ordered(manifest):
        ls = r.details.get("layer_sparsity")
        if r.details.get("source") == "pruned" and ls:
            extra.append(
                f"- `{name}` per-layer sparsity: "
                + ", ".join(f"{k} {v:.1%}" for k, v in ls.items())
                + f"; schedule {r.details.get('schedule')}"
            )
        if name == "onnx_int8" and "candidates" in r.details:
            extra.append(
                f"- `onnx_int8` route kept: {r.details.get('route')}; candidates: "
                + "; ".join(
                    f"{k}: " + ("failed" if v is None else f"{v['value']:.4f}, b64 {v['latency_ms_b64']:.3f} ms")
                    for k, v in r.details["candidates"].items()
                )
                + f" (onnx_fp32 b64 {r.details.get('fp32_latency_ms_b64'):.3f} ms)"
            )
    if extra:
        lines += ["", *extra]
    return "\n".join(lines) + "\n"


def plot(manifest: Manifest, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = ordered(manifest)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.8))
    for name, r in items:
        color = "tab:green" if r.status == "accepted" else "tab:red"
        a1.scatter(r.size_bytes / 1024, r.value, c=color)
        a1.annotate(name, (r.size_bytes / 1024, r.value), fontsize=7, xytext=(3, 3), textcoords="offset points")
    a1.set_xscale("log")
    a1.set_xlabel("file size (KiB, log)")
    a1.set_ylabel(f"test {items[0][1].metric}" if items else "")
    a1.set_title(f"{manifest.name}: {items[0][1].metric if items else ''} against size (red = rejected)")
    a1.grid(alpha=0.3)
    names = [n for n, _ in items]
    x = range(len(names))
    a2.bar([i - 0.2 for i in x], [r.latency_ms_b1 or 0 for _, r in items], 0.4, label="batch 1")
    a2.bar([i + 0.2 for i in x], [r.latency_ms_b64 or 0 for _, r in items], 0.4, label="batch 64")
    a2.set_xticks(list(x), names, rotation=45, ha="right", fontsize=8)
    a2.set_ylabel("median latency (ms)")
    a2.set_title("latency by variant")
    a2.legend()
    a2.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(version_dir: Path, manifest: Manifest) -> None:
    (version_dir / REPORT_MD).write_text(markdown(manifest))
    plot(manifest, version_dir / REPORT_PNG)


SUMMARY = [
    "variant",
    "value",
    "delta",
    "max|diff|",
    "KiB",
    "gzip KiB",
    "vs tflite_fp32",
    "sparsity",
    "ms b1",
    "ms b64",
    "status",
]


def summary_table(manifests: list[Manifest]) -> Table:
    table = Table(title="modelyard export: every variant validated on the full real test set")
    table.add_column("model")
    for h in SUMMARY:
        table.add_column(h, justify="left" if h in ("variant", "status") else "right")
    for m in manifests:
        for i, row in enumerate(rows(m)):
            name, metric, value, delta, diff, kib, gz, ratio, sp, b1, b64, status = row
            status = "[green]accepted[/green]" if status == "accepted" else "[red]rejected[/red]"
            table.add_row(
                f"{m.name} v{m.version} ({metric})" if i == 0 else "",
                name,
                value,
                delta,
                diff,
                kib,
                gz,
                ratio,
                sp,
                b1,
                b64,
                status,
            )
        table.add_section()
    return table


def rejections(manifests: list[Manifest]) -> list[str]:
    return [f"{m.name} {n}: {r.reason}" for m in manifests for n, r in ordered(m) if r.status != "accepted"]
