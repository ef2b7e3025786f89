"""The web console at ``/ui/``: static HTML and JavaScript (``serving/console/``, no build step, nothing from a
CDN), one JSON document of what is served (:func:`models`, polled by the page) and each version's stakeholder
report (``<version>/report/``, written by ``modelyard report``), read-only.

The page itself holds no data, so it is open like the health probes; what it shows comes from
``/ui/api/...``, which needs the API key as metadata does (``--public-metadata`` opens it), and its try-it form
calls the inference API with the key the user types in. The routes stay out of the OpenAPI document: they are
the console, not the API.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from modelyard.errors import ModelyardError
from modelyard.manifest import MANIFEST_FILE, Manifest
from modelyard.tasks import TASKS
from serving.errors import NotFound
from serving.routing import parse_version
from serving.rest import json_response

CONSOLE_DIR = Path(__file__).parent / "console"
PREFIX = "/ui"
API_PREFIX = "/ui/api/"
REPORT_DIR, REPORT_SUMMARY = "report", "summary.json"
QUALITY = {
    "modelyard_live_accuracy": "accuracy",
    "modelyard_live_mae": "mae",
    "modelyard_live_labelled_predictions": "labelled",
}
"""The prediction log's live quality gauges (``--prediction-log``, once feedback brings ground truth)."""
DOCS_ASSETS = "/static-offline-docs"
"""Where fastapi-offline serves swagger-ui's and ReDoc's files (``/docs`` is its page; ``/redoc`` is :func:`redoc`)."""


@functools.lru_cache(maxsize=64)
def _manifest(path: str, mtime_ns: int) -> Manifest | None:
    try:
        return Manifest.read(Path(path))
    except ModelyardError:
        return None


def _read_manifest(vdir: Path) -> Manifest | None:
    path = vdir / MANIFEST_FILE
    try:
        return _manifest(str(path), path.stat().st_mtime_ns)
    except OSError:
        return None


@functools.lru_cache(maxsize=64)
def _summary(path: str, mtime_ns: int) -> dict | None:
    import orjson

    try:
        return orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def _report(vdir: Path, name: str, version: int) -> dict | None:
    path = vdir / REPORT_DIR / REPORT_SUMMARY
    try:
        summary = _summary(str(path), path.stat().st_mtime_ns)
    except OSError:
        return None
    return {"url": f"{API_PREFIX}reports/{name}/{version}/index.html", "summary": summary}


def _variants(m: Manifest) -> list[dict]:
    return [
        {
            "name": n,
            "format": r.format,
            "metric": r.metric,
            "value": r.value,
            "delta": r.delta,
            "size_bytes": r.size_bytes,
            "gzip_bytes": r.gzip_bytes,
            "latency_ms_b1": r.latency_ms_b1,
            "latency_ms_b64": r.latency_ms_b64,
            "status": r.status,
            "reason": r.reason,
        }
        for n, r in m.variants.items()
    ]


def _input(m: Manifest) -> dict:
    p = m.preprocessing
    if p.kind == "tabular":
        return {
            "kind": "features",
            "tensor": m.inputs[0].name,
            "feature_names": p.feature_names,
            "example": [round(p.feature_stats[f].mean, 3) if f in p.feature_stats else 0.0 for f in p.feature_names],
        }
    return {"kind": "text"}


def _version_state(st, version: int) -> tuple[str, str]:
    if st is None:
        return "NOT LOADED", ""
    if version in st.versions:
        return "AVAILABLE", ""
    if version in st.loading:
        return "LOADING", ""
    if version in st.failed:
        return "FAILED", st.failed[version][1]
    return "NOT SERVED", "outside the version policy"


def _live(metrics) -> dict[str, dict]:
    """Cumulative per model: requests (and failed ones), the latency histogram, rows and runs of batches, and the
    prediction log's live quality where it has ground truth. The page turns two polls into a rate, a p99 and a
    mean batch size over the time between them. Read from what ``/metrics`` exposes (summed over workers)."""
    live: dict[str, dict] = {}

    def entry(model: str) -> dict:
        return live.setdefault(
            model, {"requests": 0, "errors": 0, "latency_buckets": {}, "batch_rows": 0.0, "batches": 0, "quality": {}}
        )

    registry = getattr(metrics, "exposition", metrics.registry)
    for family in registry.collect():
        for s in family.samples:
            if s.name == "modelyard_requests_total":
                e = entry(s.labels["model"])
                e["requests"] += int(s.value)
                e["errors"] += int(s.value) if s.labels["status"][0] in "45" else 0
            elif s.name == "modelyard_request_duration_seconds_bucket":
                buckets = entry(s.labels["model"])["latency_buckets"]
                buckets[s.labels["le"]] = buckets.get(s.labels["le"], 0) + int(s.value)
            elif s.name == "modelyard_batch_size_rows_sum":
                entry(s.labels["model"])["batch_rows"] += s.value
            elif s.name == "modelyard_batch_size_rows_count":
                entry(s.labels["model"])["batches"] += int(s.value)
            elif s.name in QUALITY and s.labels.get("role") == "primary":
                key = f"{s.labels['version']}/{s.labels['variant']}"
                q = entry(s.labels["model"])["quality"].setdefault(
                    key, {"version": int(s.labels["version"]), "variant": s.labels["variant"]}
                )
                q[QUALITY[s.name]] = s.value
    for e in live.values():
        e["latency_buckets"] = sorted(
            ([le, n] for le, n in e["latency_buckets"].items()),  # le "+Inf" last
            key=lambda b: float(b[0]),
        )
        e["quality"] = sorted(e["quality"].values(), key=lambda q: (-q["version"], q["variant"]))
    return live


def _model(dp, name: str, live: dict) -> dict:
    reg = dp.registry
    st = reg.models.get(name)
    loaded = set(st.versions) | set(st.failed) | st.loading if st else set()
    versions = []
    for v in sorted(set(reg.repo.versions(name)) | loaded, reverse=True):
        vdir = reg.repo.path(name, v)
        m = _read_manifest(vdir)
        state, reason = _version_state(st, v)
        served = sorted(st.versions[v]) if st and v in st.versions else []
        versions.append(
            {
                "version": v,
                "state": state,
                "reason": reason,
                "served_variants": served,
                "created_at": m.created_at if m else None,
                "test_metrics": m.metrics if m else {},
                "variants": _variants(m) if m else [],
                "report": _report(vdir, name, v),
            }
        )
    newest = next((_read_manifest(reg.repo.path(name, x["version"])) for x in versions), None)
    cfg = reg.model_config(name)
    thresholded = newest is not None and TASKS[newest.task].thresholded
    return {
        "name": name,
        "task": newest.task if newest else None,
        "labels": newest.labels if newest else None,
        "input": _input(newest) if newest else None,
        "threshold": cfg.threshold if thresholded else None,
        "default_variant": reg.default_variant(name),
        "unloaded": name in reg.unloaded,
        "versions": versions,
        "live": live.get(
            name, {"requests": 0, "errors": 0, "latency_buckets": [], "batch_rows": 0.0, "batches": 0, "quality": []}
        ),
    }


async def models(request: Request):
    """Every model of the repository: versions and their state, variants with their export validation figures,
    the decision threshold, the stakeholder report, and cumulative live figures."""
    dp = request.app.state.dataplane
    live = _live(dp.metrics)
    names = sorted(set(dp.registry.repo.model_names()) | set(dp.registry.models))
    return json_response({"models": [_model(dp, n, live) for n in names]})


async def report_file(request: Request, name: str, version: str, file: str):
    """A file of a version's stakeholder report, read-only: only names the report directory lists."""
    repo = request.app.state.dataplane.registry.repo
    v = parse_version(version)
    if name not in repo.model_names():
        raise NotFound(f"no model '{name}' in the repository")
    folder = repo.path(name, v) / REPORT_DIR
    try:
        listed = set(os.listdir(folder))
    except OSError:
        listed = set()
    if file not in listed:
        raise NotFound(
            f"model '{name}' version {v} has no report file '{file}'"
            + ("" if listed else f"; write one with: modelyard report {name} --version {v}")
        )
    return FileResponse(folder / file, headers={"Cache-Control": "no-cache"})


REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_REDOC_LOCAL_LOGO = """<script>
// ReDoc's sidebar loads Redocly's logo from a CDN, with no option to turn it off: point it at the local favicon,
// so the page makes no request off this server.
const [cdnLogo, localLogo] = ["%s", "%s"];
const setAttribute = Element.prototype.setAttribute;
Element.prototype.setAttribute = function (name, value) {
  return setAttribute.call(this, name, name === "src" && value === cdnLogo ? localLogo : value);
};
const src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
Object.defineProperty(HTMLImageElement.prototype, "src", {
  ...src, set(value) { src.set.call(this, value === cdnLogo ? localLogo : value); },
});
</script>"""


async def redoc(request: Request):
    """ReDoc from the assets fastapi-offline ships (FastAPI's own page loads them from a CDN)."""
    from fastapi.openapi.docs import get_redoc_html

    root = request.scope.get("root_path", "")
    static = f"{root}{DOCS_ASSETS}"
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{static}/redoc.standalone.js",
        redoc_favicon_url=f"{static}/favicon.png",
        with_google_fonts=False,
    )
    shim = _REDOC_LOCAL_LOGO % (REDOC_CDN_LOGO, f"{static}/favicon.png")
    return HTMLResponse(page.body.decode().replace("<body>", "<body>" + shim, 1))


async def redirect_to_console(request: Request):
    return RedirectResponse(f"{request.scope.get('root_path', '')}{PREFIX}/", status_code=308)


ROUTES = [
    ("GET", API_PREFIX + "models", models),
    ("GET", API_PREFIX + "reports/{name}/{version}/{file}", report_file),
    ("GET", PREFIX, redirect_to_console),
    ("GET", "/redoc", redoc),
]


def mount(app) -> None:
    """The console's routes, outside the OpenAPI document, and its static files under ``/ui/``."""
    for method, path, handler in ROUTES:
        app.add_api_route(path, handler, methods=[method], include_in_schema=False)
    app.mount(PREFIX, StaticFiles(directory=CONSOLE_DIR, html=True), name="console")
