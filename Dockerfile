# syntax=docker/dockerfile:1
# The serving image: `pip install .[serve]` (onnxruntime, FastAPI/uvicorn, gRPC, Prometheus client; no TensorFlow),
# run as an unprivileged user. REST on 8080 and KServe V2 gRPC on 8081 (KServe's ports for a custom predictor).
# The model repository is /models: mount one there (deploy/k8s does), or copy ./models in at build time:
#   docker build -t modelyard:0.1.0 .                                       # /models empty: mount a repository
#   docker build --build-arg MODELS_FROM=checkout -t modelyard:0.1.0-models .   # ./models (after `make models`)
#   docker run --rm -p 8080:8080 -p 8081:8081 -v "$PWD/models:/models:ro" modelyard:0.1.0
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG MODELS_FROM=none

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# the build context less what .dockerignore leaves out: pyproject.toml, README.md and every package
COPY . .
RUN python -m venv /opt/modelyard && /opt/modelyard/bin/pip install ".[serve]"

# Where /models comes from: MODELS_FROM=none (an empty folder) or checkout (the build context's ./models).
FROM ${PYTHON_IMAGE} AS models-none
RUN mkdir /models

FROM ${PYTHON_IMAGE} AS models-checkout
COPY models /models

# a stage of this file, not an image to tag:
# hadolint ignore=DL3006
FROM models-${MODELS_FROM} AS models

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin modelyard
COPY --from=build /opt/modelyard /opt/modelyard
COPY --from=models /models /models
ENV PATH=/opt/modelyard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MODELYARD_REPO=/models \
    MODELYARD_HOST=0.0.0.0 \
    MODELYARD_PORT=8080 \
    MODELYARD_GRPC_PORT=8081
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/v2/health/ready', timeout=2)"]
ENTRYPOINT ["modelyard", "serve"]
