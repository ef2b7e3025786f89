# Two entry points: `make serve` (a running server with all three models) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The folder of Keras dataset files: MODELYARD_DATA_DIR, else ../shared/datasets where it exists; with neither,
# `make models` trains and exports from keras.datasets downloads (no --data-dir).
DATA_DIR ?= $(if $(MODELYARD_DATA_DIR),$(MODELYARD_DATA_DIR),$(wildcard ../shared/datasets))
DATA_FLAG := $(if $(DATA_DIR),--data-dir $(DATA_DIR))
REPO ?= models
MODELS := imdb reuters boston
ORT_WEB := export/browser/node_modules/.package-lock.json

.PHONY: serve test install install-dev models browser bench bench-peers gpu-kit proto clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Train each model only when the repository has no version of it, export only when no version has ONNX yet, and
# write the latest version's stakeholder report (modelyard report) when it has none and the dataset folder is known.
models: install
	@for m in $(MODELS); do \
	  if ! ls $(REPO)/$$m/*/manifest.json >/dev/null 2>&1; then \
	    $(BIN)/modelyard train $$m $(DATA_FLAG) --repo $(REPO) || exit 1; \
	  fi; \
	  if ! ls $(REPO)/$$m/*/onnx/fp32.onnx >/dev/null 2>&1; then \
	    $(BIN)/modelyard export $$m $(DATA_FLAG) --repo $(REPO) || exit 1; \
	  fi; \
	  latest=$$(ls $(REPO)/$$m | grep -xE '[0-9]+' | sort -n | tail -1); \
	  if [ -n "$(DATA_DIR)" ] && [ ! -f $(REPO)/$$m/$$latest/report/index.html ]; then \
	    $(BIN)/modelyard report $$m --data-dir $(DATA_DIR) --repo $(REPO) || exit 1; \
	  fi; \
	done

# The prediction log (README, "In the wild"): SQLite under runs/; PREDICTION_LOG= (empty) serves without it.
PREDICTION_LOG ?= sqlite:///$(abspath runs/predictions.db)
serve: models
	@mkdir -p runs
	$(BIN)/modelyard serve --repo $(REPO) $(if $(PREDICTION_LOG),--prediction-log $(PREDICTION_LOG))

test: install-dev $(ORT_WEB)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(if $(DATA_DIR),MODELYARD_DATA_DIR=$${MODELYARD_DATA_DIR:-$(abspath $(DATA_DIR))}) $(BIN)/python -m pytest

# onnxruntime-web, vendored into the browser bundles, at the version package-lock.json pins (no CDN)
$(ORT_WEB): export/browser/package.json export/browser/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the browser bundles: apt-get install npm"; exit 2; }
	npm ci --prefix export/browser --ignore-scripts --no-audit --no-fund

# models/<name>/<version>/browser/: each model as a static page that runs offline (open its index.html)
browser: models $(ORT_WEB)
	$(BIN)/modelyard export all --browser --repo $(REPO)

# LitServe, BentoML and MLServer for `modelyard bench`, in their own environment; wrk from the system's packages.
PEERS := .bench-peers
$(PEERS)/.installed: loadtests/bench/peers-requirements.txt
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install --quiet --upgrade pip
	$(PEERS)/bin/pip install --quiet -r loadtests/bench/peers-requirements.txt
	touch $@

bench-peers: $(PEERS)/.installed

bench: install-dev models bench-peers
	@command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk (or brew install wrk)"; exit 2; }
	$(BIN)/modelyard bench --repo $(REPO) $(DATA_FLAG) --peers-venv $(PEERS)

# The GPU measurement for a GPU machine without internet: wheels, wrk, k6, models and data in call-sized
# folders .gpu-kit/1..N (python -m loadtests.bench.gpu_kit; it prints the device calls). GPU_KIT_PYTHON: its python3.
GPU_KIT_PYTHON ?= 3.12
gpu-kit: install-dev
	$(BIN)/python -m loadtests.bench.gpu_kit build --python-version $(GPU_KIT_PYTHON) --repo $(REPO) $(DATA_FLAG)

# The KServe V2 gRPC code (serving/protocols/proto), generated with grpcio-tools from the protocol inside the kserve
# wheel on PyPI; serving/protocols/proto/regenerate.py says how and why its two edits.
proto: install-dev
	$(BIN)/python -m serving.protocols.proto.regenerate

clean:
	rm -rf $(VENV) runs
