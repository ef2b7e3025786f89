"""The browser bundle, ``<version>/browser/``: a static page that runs the smallest accepted ONNX variant with
onnxruntime-web (WebAssembly) on the visitor's computer, with the Keras-exact tokenizer in JS, the vocabulary, the
labels or the feature names.

It works from ``file://`` and offline: Chromium refuses module scripts and ``fetch`` there, so every byte the page
needs is in classic scripts beside it: the runtime's wasm binary (gzip, then base64) and its module glue (as text,
imported from a ``blob:`` URL), the model (gzip, then base64), the vocabulary as a JS object. onnxruntime-web is
vendored from the npm package pinned in ``export/browser/package.json`` (``npm ci --prefix export/browser``).
Built from a version that is already exported (no TensorFlow), published with the version's other files
(``ModelRepository.update_version``: a staged copy renamed into place, every file re-hashed into the manifest)."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from export.variants import ExportError, smallest_accepted
from modelyard.encoding import KERAS_FILTERS
from modelyard.hashing import file_digest
from modelyard.manifest import Manifest, TextPreprocessing
from modelyard.repository import ModelRepository
from modelyard.tasks import DEFAULT_THRESHOLD

BROWSER_DIR = "browser"
ASSETS = Path(__file__).with_name("browser")
ORT_PACKAGE = ASSETS / "node_modules" / "onnxruntime-web"
ORT_DIST = ORT_PACKAGE / "dist"
ORT_SCRIPT = "ort.wasm.min.js"  # the WebAssembly-only build, as a classic script (global `ort`)
ORT_GLUE = "ort-wasm-simd-threaded.mjs"
ORT_WASM = "ort-wasm-simd-threaded.wasm"
PAGE_FILES = ("index.html", "style.css", "tokenizer.js", "app.js")

EXAMPLE_TEXT = {
    "binary_classification": "One of the most moving films I have seen in years: the acting is superb, and the story "
    "stays with you long after the credits roll.",
    "multiclass_classification": "The company said its board declared a quarterly dividend of 15 cts per share, up "
    "from 12 cts, payable April 15 to shareholders of record March 31.",
}
INPUT_LABEL = {"binary_classification": "A movie review (English)", "multiclass_classification": "A newswire (English)"}
FEATURE_HELP = {  # the Boston housing features, as the dataset's documentation describes them
    "CRIM": "per-capita crime rate by town",
    "ZN": "share of residential land zoned for lots over 25,000 sq.ft.",
    "INDUS": "share of non-retail business acres per town",
    "CHAS": "1 if the tract bounds the Charles River, else 0",
    "NOX": "nitric oxides concentration (parts per 10 million)",
    "RM": "average number of rooms per dwelling",
    "AGE": "share of owner-occupied units built before 1940",
    "DIS": "weighted distance to 5 Boston employment centres",
    "RAD": "index of access to radial highways",
    "TAX": "property-tax rate per $10,000",
    "PTRATIO": "pupil-teacher ratio by town",
    "B": "1000(Bk - 0.63)^2, Bk the share of Black residents",
    "LSTAT": "% lower-status population",
}

# The first tract of the Boston housing data (row 0 of boston_housing.npz), whose median home value was $24,000
EXAMPLE_TRACT = {
    "CRIM": 0.00632,
    "ZN": 18.0,
    "INDUS": 2.31,
    "CHAS": 0.0,
    "NOX": 0.538,
    "RM": 6.575,
    "AGE": 65.2,
    "DIS": 4.09,
    "RAD": 1.0,
    "TAX": 296.0,
    "PTRATIO": 15.3,
    "B": 396.9,
    "LSTAT": 4.98,
}


@dataclass
class BrowserBundle:
    name: str
    version: int
    variant: str
    dir: Path
    sizes: dict[str, tuple[int, int]]
    """File name -> (bytes, gzip -9 bytes), as a static host serving it compressed would send it."""

    @property
    def total(self) -> tuple[int, int]:
        return sum(s for s, _ in self.sizes.values()), sum(g for _, g in self.sizes.values())


def pinned_ort_version() -> str:
    return json.loads((ASSETS / "package.json").read_text())["dependencies"]["onnxruntime-web"]


def check_vendored_runtime() -> str:
    """The installed onnxruntime-web version, which must be the pinned one."""
    pinned = pinned_ort_version()
    fix = "run: npm ci --prefix export/browser (or make browser)"
    try:
        installed = json.loads((ORT_PACKAGE / "package.json").read_text())["version"]
    except FileNotFoundError:
        raise ExportError(f"onnxruntime-web is not installed in {ASSETS / 'node_modules'}; {fix}") from None
    if installed != pinned:
        raise ExportError(f"{ORT_PACKAGE} is version {installed}, but package.json pins {pinned}; {fix}")
    missing = [f for f in (ORT_SCRIPT, ORT_GLUE, ORT_WASM) if not (ORT_DIST / f).is_file()]
    if missing:
        raise ExportError(f"onnxruntime-web {installed} lacks {', '.join(missing)} in {ORT_DIST}; {fix}")
    return installed


def choose_variant(manifest: Manifest, requested: str | None) -> str:
    """The requested ONNX variant, else the smallest accepted one."""
    return smallest_accepted(manifest, "onnx", requested, "--browser-variant", "the browser bundle")


def _gzip_base64(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data, 9, mtime=0)).decode("ascii")


def _script(global_name: str, value) -> str:
    return f"globalThis.{global_name} = {json.dumps(value, ensure_ascii=True, separators=(',', ':'))};\n"


def _vocab(version_dir: Path, p: TextPreprocessing) -> list[tuple[str, int]]:
    """[word, rank] pairs of the words that can get an id of their own (rank + index_from < num_words); any other
    word is OOV, in ``TextEncoder`` as in the page, so leaving them out changes no id."""
    with open(version_dir / p.vocab_file, encoding="utf-8") as f:
        word_index = json.load(f)
    return sorted(((w, r) for w, r in word_index.items() if r + p.index_from < p.num_words), key=lambda wr: wr[1])


def serving_threshold(config: Path | None, name: str) -> float:
    """The binary decision threshold the server uses for ``name``: its serving config's, else the default."""
    from serving.serving_config import ServeConfig

    model = ServeConfig.read(config).models.get(name) if config is not None else None
    return model.threshold if model is not None else DEFAULT_THRESHOLD


def bundle_config(
    version_dir: Path, manifest: Manifest, variant: str, ort_version: str, threshold: float = DEFAULT_THRESHOLD
) -> dict:
    rec = manifest.variants[variant]
    config = {
        "name": manifest.name,
        "version": manifest.version,
        "task": manifest.task,
        "variant": variant,
        "model_file": rec.path,
        "model_sha256": file_digest(version_dir / rec.path),
        "metric_name": rec.metric,
        "metric_value": rec.value,
        "ort_version": ort_version,
        "labels": manifest.labels,
        "threshold": threshold,
        "output_description": manifest.outputs[0].description,
    }
    p = manifest.preprocessing
    if isinstance(p, TextPreprocessing):
        if (p.filters, p.lowercase, p.split) != (KERAS_FILTERS, True, " "):
            raise ExportError(
                f"{manifest.name}: the browser tokenizer follows Keras' defaults (lowercase, its filter, "
                "split on spaces), which this version's preprocessing does not use"
            )
        config["preprocessing"] = {
            "kind": p.kind,
            "num_words": p.num_words,
            "index_from": p.index_from,
            "start_char": p.start_char,
            "oov_char": p.oov_char,
            "filters": p.filters,
        }
        config["example_text"] = EXAMPLE_TEXT[manifest.task]
        config["input_label"] = INPUT_LABEL[manifest.task]
    else:
        config["preprocessing"] = {"kind": p.kind}
        config["feature_names"] = p.feature_names
        if set(p.feature_names) == set(EXAMPLE_TRACT):
            config["feature_defaults"] = [EXAMPLE_TRACT[n] for n in p.feature_names]
            config["example_note"] = (
                "Filled in with the first tract of the Boston housing data, whose median home value was $24,000."
            )
        else:
            stats = p.feature_stats
            config["feature_defaults"] = [float(f"{stats[n].mean:.4g}") if n in stats else 0.0 for n in p.feature_names]
            config["example_note"] = "Filled in with each feature's mean over the training set."
        config["feature_help"] = {n: FEATURE_HELP[n] for n in p.feature_names if n in FEATURE_HELP}
    return config


def write_bundle(
    version_dir: Path, manifest: Manifest, variant: str, ort_version: str, threshold: float, out: Path
) -> None:
    config = bundle_config(version_dir, manifest, variant, ort_version, threshold)
    (out / "bundle.json").write_text(json.dumps(config, indent=2) + "\n")
    p = manifest.preprocessing
    page_data = {**config, "vocab": _vocab(version_dir, p)} if isinstance(p, TextPreprocessing) else config
    (out / "bundle.js").write_text(_script("MODELYARD_BUNDLE", page_data))
    (out / "model.js").write_text(
        _script(
            "MODELYARD_MODEL",
            {"gzip_base64": _gzip_base64((version_dir / manifest.variants[variant].path).read_bytes())},
        )
    )
    (out / "ort-runtime.js").write_text(
        _script(
            "MODELYARD_RUNTIME",
            {
                "version": ort_version,
                "glue": (ORT_DIST / ORT_GLUE).read_text(encoding="utf-8"),
                "wasm_gzip_base64": _gzip_base64((ORT_DIST / ORT_WASM).read_bytes()),
            },
        )
    )
    shutil.copyfile(ORT_DIST / ORT_SCRIPT, out / ORT_SCRIPT)
    for f in PAGE_FILES:
        shutil.copyfile(ASSETS / f, out / f)
    (out / "NOTICE.txt").write_text(
        f"{ORT_SCRIPT} and ort-runtime.js hold onnxruntime-web {ort_version} "
        "(https://github.com/microsoft/onnxruntime), (c) Microsoft Corporation, "
        "MIT License.\n"
    )


def file_sizes(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        p.name: (p.stat().st_size, len(gzip.compress(p.read_bytes(), 9, mtime=0)))
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def build_browser_bundle(
    repo: ModelRepository,
    name: str,
    version: int | None = None,
    requested: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> BrowserBundle:
    """Write (or replace) ``<name>/<version>/browser/``; the version is published whole or left as it was.
    ``threshold``: from which probability a binary model's page says the positive label (the server's)."""
    ort_version = check_vendored_runtime()
    version = repo.resolve(name, version)
    with repo.update_version(name, version) as stage:
        manifest = stage.manifest
        variant = choose_variant(manifest, requested)
        out = stage.dir / BROWSER_DIR
        if out.exists():
            shutil.rmtree(out)
        out.mkdir()
        write_bundle(stage.dir, manifest, variant, ort_version, threshold, out)
    final = repo.path(name, version) / BROWSER_DIR
    return BrowserBundle(name, version, variant, final, file_sizes(final))
