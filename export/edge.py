"""The edge bundle: one ``.tflite`` file, the vocabulary or feature names, labels, a small manifest and
a ``predict.py`` that needs only ai-edge-litert and numpy (no TensorFlow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from export.variants import smallest_accepted
from modelyard.hashing import file_digest
from modelyard.manifest import Manifest, TextPreprocessing

EDGE_DIR = "edge"
TEMPLATE = Path(__file__).with_name("predict_template.py")


def choose_variant(manifest: Manifest, requested: str | None) -> str:
    """The requested TFLite variant, else the smallest accepted one."""
    return smallest_accepted(manifest, "tflite", requested, "--edge-variant", "the edge bundle")


def build_bundle(version_dir: Path, manifest: Manifest, requested: str | None = None) -> str:
    name = choose_variant(manifest, requested)
    rec = manifest.variants[name]
    out = version_dir / EDGE_DIR
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    shutil.copyfile(version_dir / rec.path, out / "model.tflite")
    bundle = {
        "name": manifest.name,
        "version": manifest.version,
        "task": manifest.task,
        "variant": name,
        "model_file": "model.tflite",
        "model_sha256": file_digest(out / "model.tflite"),
        "metric": {rec.metric: rec.value, "delta_vs_keras": rec.delta},
        "inputs": [s.model_dump() for s in rec.inputs],
        "outputs": [s.model_dump() for s in rec.outputs],
        "output_name": manifest.outputs[0].name,
        "output_description": manifest.outputs[0].description,
        "labels": manifest.labels,
    }
    p = manifest.preprocessing
    if isinstance(p, TextPreprocessing):
        shutil.copyfile(version_dir / p.vocab_file, out / "vocab.json")
        bundle["preprocessing"] = {
            "kind": "multi_hot_text",
            "vocab_file": "vocab.json",
            "num_words": p.num_words,
            "index_from": p.index_from,
            "start_char": p.start_char,
            "oov_char": p.oov_char,
            "lowercase": p.lowercase,
            "filters": p.filters,
            "split": p.split,
        }
    else:
        bundle["preprocessing"] = {"kind": "tabular", "feature_names": p.feature_names}
    (out / "bundle.json").write_text(json.dumps(bundle, indent=2) + "\n")
    shutil.copyfile(TEMPLATE, out / "predict.py")
    return name
