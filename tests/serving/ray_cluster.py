"""A two-node Ray cluster on 127.0.0.1 (Ray's ``Cluster`` test utility), run as its own process for
tests/serving/test_ray_serve.py: Ray's in-process driver shares the test process with whatever earlier tests left
there (gRPC threads, TensorFlow, a browser driver), and its node startup timed out there in a full run. It prints
the cluster's address as one JSON line, then answers one JSON line per command read from stdin: ``replica_nodes
CLASS`` (the node ids of the live actors of that class) and ``quit``."""

from __future__ import annotations

import json
import os
import sys

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


def main() -> None:
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=node)
    try:
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        print(json.dumps({"address": cluster.address}), flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "quit":
                break
            actors = cluster.global_state.actor_table(None).values()
            print(
                json.dumps(
                    sorted(
                        {a["Address"]["NodeID"] for a in actors if a["ActorClassName"] == arg and a["State"] == "ALIVE"}
                    )
                ),
                flush=True,
            )
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
