"""``modelyard serve --ray`` end to end: a two-node Ray cluster on this machine (Ray's ``Cluster`` test utility,
every node on 127.0.0.1, usage statistics off), the real ``modelyard serve --ray --ray-address ... --replicas 2``
command deploying to it, one replica per node, protocol requests (KServe V2 and TF Serving REST through Ray's HTTP
proxy, KServe V2 gRPC through its gRPC proxy) answered as the exported ONNX files answer, then SIGTERM: the app is
removed and the command exits 0. About 45 s (Ray takes most of it); skipped when Ray is not installed (the dev extra
has it)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from loadtests.process import ServerProcess, free_port
from modelyard.errors import ModelyardError
from modelyard.settings import Settings
from served_answers import check_v2_and_tfs, check_v2_grpc, model_repo

ray = pytest.importorskip("ray")
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
REPLICA_CLASS = "ServeReplica:modelyard:modelyard"


class TwoNodeCluster:
    """tests/serving/ray_cluster.py in its own process, and the questions this test asks it."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("ray_cluster.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        )
        line = self.proc.stdout.readline()
        assert line, f"the Ray cluster did not start (exit code {self.proc.poll()})"
        self.address = json.loads(line)["address"]

    def replica_nodes(self) -> set[str]:
        self.proc.stdin.write(f"replica_nodes {REPLICA_CLASS}\n")
        self.proc.stdin.flush()
        return set(json.loads(self.proc.stdout.readline()))

    def shutdown(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def two_node_cluster():
    cluster = TwoNodeCluster()
    yield cluster
    cluster.shutdown()


def test_ray_serve_two_nodes_answers_both_protocols(two_node_cluster, fixture_root, tmp_path):
    repo = model_repo(fixture_root, tmp_path)
    port, grpc_port = free_port(), free_port()
    t0 = time.monotonic()
    driver = ServerProcess(
        [
            sys.executable,
            "-m",
            "modelyard",
            "serve",
            "--ray",
            "--ray-address",
            two_node_cluster.address,
            "--replicas",
            "2",
            "--repo",
            str(repo),
            "--port",
            str(port),
            "--grpc-port",
            str(grpc_port),
        ],
        tmp_path / "driver.log",
        port=port,
        env={
            "MODELYARD_RAY_PROXY_LOCATION": "HeadOnly",  # both nodes share this machine's ports
            "MODELYARD_ACCESS_LOG": "false",
            "RAY_USAGE_STATS_ENABLED": "0",
            # Ray replaces a loopback cluster address with the machine's IP, where this cluster
            # (bound to 127.0.0.1) does not listen; this switch keeps the driver on loopback
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        },
    )
    try:
        driver.wait_ready(driver.url + "/v2/health/ready", 180)
        deployed_s = time.monotonic() - t0
        assert len(two_node_cluster.replica_nodes()) == 2, "one replica on each node"
        with httpx.Client(base_url=driver.url, timeout=30) as client:
            for _ in range(4):  # Ray's proxy spreads requests over both replicas
                check_v2_and_tfs(client, repo)
            assert client.get("/v2/health/live").json() == {"live": True}
            bad = client.post(
                "/v2/models/boston/infer",
                json={"inputs": [{"name": "features", "shape": [1, 12], "datatype": "FP32", "data": [0.0] * 12}]},
            )
            assert bad.status_code == 400 and "error" in bad.json()
        for _ in range(2):  # V2 gRPC through Ray's gRPC proxy
            check_v2_grpc(f"127.0.0.1:{grpc_port}", repo)
    finally:
        code = driver.stop(60)
    assert code == 0, driver.tail()
    assert "removing the Ray Serve app" in driver.log_path.read_text()
    assert not two_node_cluster.replica_nodes(), "replicas stopped"
    print(f"deployed and ready in {deployed_s:.1f}s")


def test_bad_autoscale_fails_before_ray_starts():
    from serving.ray_serve import deployment_options

    for text in ("3", "2:1", "a:b", "0:0", "-1:2"):
        with pytest.raises(ModelyardError, match="MIN:MAX"):
            deployment_options(Settings(autoscale=text))
    options = deployment_options(Settings(autoscale="1:4"))
    assert options["autoscaling_config"]["min_replicas"] == 1 and options["autoscaling_config"]["max_replicas"] == 4
    assert deployment_options(Settings(replicas=3))["num_replicas"] == 3


def test_ray_flags_need_ray_and_one_replica_rule(tmp_path):
    from serving.ray_serve import check_flags

    for flags in ({"replicas": 2}, {"autoscale": "1:2"}, {"ray_address": "auto"}):
        with pytest.raises(ModelyardError, match="only with --ray"):
            check_flags(Settings(**flags))
    with pytest.raises(ModelyardError, match="give one"):
        check_flags(Settings(ray=True, replicas=2, autoscale="1:3"))
    check_flags(Settings(ray=True, autoscale="1:3"))
    check_flags(Settings())
    r = subprocess.run(
        [sys.executable, "-m", "modelyard", "serve", "--replicas", "2", "--repo", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "--replicas: only with --ray" in r.stderr, r.stderr
