"""Predict with this bundle's TFLite model. Needs only ai-edge-litert and numpy (no TensorFlow).

python predict.py "this movie was wonderful"          # IMDB / Reuters: a text
python predict.py 0.1 0 8.1 0 0.5 6.2 70 4 5 300 17 390 10     # Boston: 13 numbers
python predict.py CRIM=0.1 ZN=0 ... LSTAT=10                  # Boston: NAME=value pairs
"""

import json
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

HERE = Path(__file__).resolve().parent


def tokenize(text, pre):
    """Keras' text_to_word_sequence: lowercase, punctuation filter -> split character, split."""
    if pre.get("lowercase", True):
        text = text.lower()
    text = text.translate(str.maketrans({c: pre["split"] for c in pre["filters"]}))
    return [t for t in text.split(pre["split"]) if t]


def encode_text(text, pre):
    with open(HERE / pre["vocab_file"], encoding="utf-8") as f:
        word_index = json.load(f)
    n = pre["num_words"]
    ids = [pre["start_char"]]
    for w in tokenize(text, pre):
        rank = word_index.get(w)
        wid = pre["oov_char"] if rank is None else rank + pre["index_from"]
        ids.append(wid if wid < n else pre["oov_char"])
    x = np.zeros((1, n), dtype=np.float32)
    x[0, ids] = 1.0
    return x


def encode_features(args, names):
    if args and all("=" in a for a in args):
        pairs = dict(a.split("=", 1) for a in args)
        missing = [n for n in names if n not in pairs]
        unknown = [k for k in pairs if k not in names]
        if missing or unknown:
            sys.exit(f"error: missing {missing} unknown {unknown}; expected {' '.join(names)}")
        values = [pairs[n] for n in names]
    else:
        values = args
    if len(values) != len(names):
        sys.exit(f"error: expected {len(names)} numbers or NAME=value pairs ({' '.join(names)}), got {len(values)}")
    try:
        return np.array([[float(v) for v in values]], dtype=np.float32)
    except ValueError:
        sys.exit("error: features must be numbers")


def run(x, model_path):
    interp = Interpreter(model_path=str(model_path))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    if inp["dtype"] != np.float32:  # integer-only model: quantize the input with the file's parameters
        scale, zero = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
    interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    y = interp.get_tensor(out["index"])
    if out["dtype"] != np.float32:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return np.asarray(y, np.float32)[0]


def main(argv):
    bundle = json.loads((HERE / "bundle.json").read_text())
    pre = bundle["preprocessing"]
    if not argv:
        sys.exit(__doc__)
    if pre["kind"] == "multi_hot_text":
        x = encode_text(" ".join(argv), pre)
    else:
        x = encode_features(argv, pre["feature_names"])
    y = run(x, HERE / bundle["model_file"])
    labels = bundle.get("labels")
    if bundle["task"] == "regression":
        print(f"{bundle['output_name']}: {float(y[0]):.3f} ({bundle['output_description']})")
    elif bundle["task"] == "binary_classification":
        p = float(np.clip(y[0], 0.0, 1.0))
        label = labels[1] if p >= 0.5 else labels[0]
        print(f"{label} {p if p >= 0.5 else 1 - p:.4f} (probability {labels[1]}: {p:.4f})")
    else:
        k = int(np.argmax(y))
        print(f"{labels[k] if labels else k} {float(y[k]):.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
