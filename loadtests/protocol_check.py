"""The protocols as their users' own clients speak them, on the real test sets.

Starts ``modelyard serve`` (REST and gRPC) on the exported models and sends the real test inputs through
tritonclient's HTTP and gRPC clients with their default settings (binary tensors over HTTP, raw contents over
gRPC) and through TF Serving's documented client code (``np.asarray(r.json()["predictions"], np.float32)``),
then compares each figure with the same ONNX model run in process on the same inputs:

* IMDB: raw review text as a BYTES tensor / ``instances`` of strings, accuracy on the first N test reviews;
* Reuters: test newswires decoded to text through the word index, accuracy on the whole test set;
* Boston: the 13 features, FP32 ``[N, 13]`` / ``instances`` of lists, MAE on the whole test set.

    python -m loadtests.protocol_check --repo models --data-dir ../shared/datasets [--imdb-reviews 1000]

Prints a table, writes ``protocol_check.{json,md}`` to ``--out``; exits 1 when a client's figure is off.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import islice
from pathlib import Path

import httpx
import numpy as np

from loadtests.payloads import imdb_samples, reuters_samples
from loadtests.process import free_port
from loadtests.runner import start_modelyard
from modelyard.datasets import load_boston, load_reuters, read_imdb_raw
from modelyard.manifest import MANIFEST_FILE, Manifest
from modelyard.onnxrun import Predictor, open_session
from modelyard.repository import ModelRepository

BATCH = 64
CLIENTS = ("tritonclient.http", "tritonclient.grpc", "TF Serving :predict")


def real_inputs(data_dir: Path, imdb_reviews: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(inputs, truth) per model: texts for IMDB and Reuters, feature rows for Boston."""
    imdb_labels = np.array([y for _, y in islice(read_imdb_raw(data_dir, "test"), imdb_reviews)])
    reuters = load_reuters(data_dir)
    boston = load_boston(data_dir)
    return {
        "imdb": (np.array(imdb_samples(data_dir, imdb_reviews).texts, dtype=object), imdb_labels),
        "reuters": (
            np.array(reuters_samples(data_dir, len(reuters.y_test)).texts, dtype=object),
            np.asarray(reuters.y_test),
        ),
        "boston": (np.asarray(boston.x_test, np.float32), np.asarray(boston.y_test, np.float32)),
    }


def score(name: str, y: np.ndarray, truth: np.ndarray) -> float:
    """Accuracy (IMDB, Reuters) or MAE (Boston) of the raw outputs ``y``."""
    if name == "imdb":
        return float(np.mean((y[:, 0] >= 0.5) == truth))
    if name == "reuters":
        return float(np.mean(np.argmax(y, axis=1) == truth))
    return float(np.mean(np.abs(y[:, 0] - truth)))


def in_process(repo: ModelRepository, name: str, x: np.ndarray) -> np.ndarray:
    """The served variant (onnx_fp32) run here, on the inputs encoded by the core encoder."""
    vdir = repo.path(name, repo.resolve(name))
    manifest = Manifest.read(vdir / MANIFEST_FILE)
    if name != "boston":
        x = manifest.text_encoder(vdir).encode(list(x))
    predictor = Predictor(open_session(vdir / manifest.variants["onnx_fp32"].path))
    return np.concatenate([predictor.run(x[i : i + BATCH]) for i in range(0, len(x), BATCH)])


def via_triton(module, client, name: str, x: np.ndarray) -> np.ndarray:
    """tritonclient with its defaults: the metadata's one declared input in, its first output out."""
    meta = (
        client.get_model_metadata(name, as_json=True)
        if module.__name__.endswith("grpc")
        else client.get_model_metadata(name)
    )
    spec, output = meta["inputs"][0], meta["outputs"][0]["name"]
    out = []
    for i in range(0, len(x), BATCH):
        part = x[i : i + BATCH]
        t = module.InferInput(spec["name"], list(part.shape), spec["datatype"])
        t.set_data_from_numpy(part)
        out.append(client.infer(name, [t]).as_numpy(output))
    return np.concatenate(out)


def via_tf_serving(url: str, name: str, x: np.ndarray) -> np.ndarray:
    """TF Serving's documented client code: row format in, ``predictions`` as a float array out."""
    out = []
    with httpx.Client(base_url=url, timeout=60) as c:
        for i in range(0, len(x), BATCH):
            r = c.post(f"/v1/models/{name}:predict", json={"instances": x[i : i + BATCH].tolist()})
            r.raise_for_status()
            out.append(np.asarray(r.json()["predictions"], np.float32))
    return np.concatenate(out)


def check(name: str, reference: float, got: float) -> bool:
    if name == "boston":
        return abs(got - reference) < 1e-3
    if name == "imdb":
        return got >= 0.87 and abs(got - reference) < 1e-9
    return abs(got - reference) <= 0.02


def run(repo_dir: Path, data_dir: Path, imdb_reviews: int, log_path: Path) -> list[dict]:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    repo = ModelRepository(repo_dir)
    inputs = real_inputs(data_dir, imdb_reviews)
    grpc_port = free_port()
    server = start_modelyard(
        repo_dir, log_path, ["--poll-interval-s", "0"], {"MODELYARD_ACCESS_LOG": "false"}, grpc_port=grpc_port
    )
    rows = []
    try:
        server.wait_ready(server.url + "/v2/health/ready", 120)
        http = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
        grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        for name, (x, truth) in inputs.items():
            row = {
                "model": name,
                "metric": "mae" if name == "boston" else "accuracy",
                "n": len(x),
                "in_process": score(name, in_process(repo, name, x), truth),
            }
            for key, fn in zip(
                CLIENTS,
                (
                    lambda: via_triton(httpclient, http, name, x),
                    lambda: via_triton(grpcclient, grpc, name, x),
                    lambda: via_tf_serving(server.url, name, x),
                ),
            ):
                t0 = time.perf_counter()
                y = fn()
                assert y.shape == (len(x), {"reuters": 46}.get(name, 1)), (key, name, y.shape)
                row[key] = score(name, y, truth)
                row[key + " s"] = round(time.perf_counter() - t0, 2)
            row["ok"] = all(check(name, row["in_process"], row[k]) for k in CLIENTS)
            rows.append(row)
            print(table([row], header=len(rows) == 1), flush=True)
        http.close()
        grpc.close()
    finally:
        server.stop()
    return rows


def table(rows: list[dict], header: bool = True) -> str:
    lines = (
        [
            "| model | metric | N | in process | " + " | ".join(CLIENTS) + " | as expected |",
            "|---|---|---:|---:|" + "---:|" * len(CLIENTS) + "---|",
        ]
        if header
        else []
    )
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['metric']} | {r['n']} | {r['in_process']:.4f} | "
            + " | ".join(f"{r[k]:.4f}" for k in CLIENTS)
            + f" | {'yes' if r['ok'] else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.protocol_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, default=Path("models"))
    p.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    p.add_argument("--imdb-reviews", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path("reports/protocol-check"))
    a = p.parse_args(argv)
    for n in ("imdb", "reuters", "boston"):
        if not ModelRepository(a.repo).versions(n):
            print(f"--repo {a.repo}: no version of '{n}'; train and export it first (make models)", file=sys.stderr)
            return 2
    a.out.mkdir(parents=True, exist_ok=True)
    rows = run(a.repo, a.data_dir, a.imdb_reviews, a.out / "server.log")
    (a.out / "protocol_check.json").write_text(json.dumps(rows, indent=2) + "\n")
    (a.out / "protocol_check.md").write_text(table(rows) + "\n")
    bad = [r["model"] for r in rows if not r["ok"]]
    if bad:
        print(f"off for {', '.join(bad)}: see the table", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
