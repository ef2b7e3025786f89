"""LitServe serving the model the way its docs recommend: a LitAPI with setup / decode / batch / predict /
unbatch / encode hooks and LitServe's own dynamic batching turned on. Run as a script: it binds its port itself."""

from __future__ import annotations

import os

import litserve as ls
import numpy as np

from loadtests.bench.apps.common import ROUTE, session, to_input


class ModelAPI(ls.LitAPI):
    def setup(self, device):
        self.sess, self.input_name = session()

    def decode_request(self, request):
        return to_input(request["instances"])

    def batch(self, inputs):
        return np.concatenate(inputs)

    def predict(self, x):
        return self.sess.run(None, {self.input_name: x})[0]

    def unbatch(self, output):
        return [row[None] for row in output]

    def encode_response(self, output):
        return {"predictions": output.tolist()}


if __name__ == "__main__":
    api = ModelAPI(
        max_batch_size=int(os.environ.get("MODELYARD_BENCH_MAX_BATCH", "64")),
        batch_timeout=float(os.environ.get("MODELYARD_BENCH_DELAY_MS", "2")) / 1000,
        api_path=ROUTE,
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, fast_queue=True)
    server.run(
        port=int(os.environ["MODELYARD_BENCH_PORT"]),
        host="127.0.0.1",
        num_api_servers=1,
        generate_client_file=False,
        log_level="warning",
    )
