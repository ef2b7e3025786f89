"""modelyard serving: a FastAPI inference server for the model repository.

- :mod:`serving.dataplane`  the one handler layer every transport calls: route, decode, batch, run, count, encode
- :mod:`serving.protocols`  one module per protocol: ``tfs`` (TF Serving REST), ``v2`` (KServe V2 REST, JSON and
                            binary tensors), ``grpc_v2`` (KServe V2 gRPC), ``http`` (what both REST protocols share)
- :mod:`serving.rest`       the REST handlers; :mod:`serving.app` the fast path in front of FastAPI and the route list
- :mod:`serving.codecs`     a model's inputs (text, token ids, multi-hot, features) and its V2 declaration
- :mod:`modelyard.tasks`    (the core) what an output means per task: labels, scores, values
- :mod:`serving.tensors`    protocol-neutral tensors and their raw bytes
- :mod:`serving.runtimes`   one small interface (load, warm up, predict a batch) per runtime
- :mod:`serving.batching`   work-conserving dynamic batching with a bounded queue; inference in a worker thread
                            (inline for batches that run faster than the handoff)
- :mod:`serving.registry`   which versions are loaded: repository polling, hot reload, admin load and unload
- :mod:`serving.serving_config` the config file: version policy, labels, traffic, shadow, batching, threshold
- :mod:`serving.routing`    which versions to load and which servable answers a request (pure functions)
- :mod:`serving.loading`    verify, load and warm up a version; :mod:`serving.lifecycle` start and stop one
- :mod:`serving.servables`  what the registry holds; :mod:`serving.shadow` mirroring to a shadow candidate
- :mod:`serving.statistics` Triton's per-version statistics; :mod:`serving.metrics` Prometheus metrics
- :mod:`serving.auth`       API keys and what they guard
- :mod:`serving.predlog`    the prediction log: answered requests as database rows, written off the request path
- :mod:`serving.feedback`   ground truth for logged predictions (``POST /v2/models/{name}/feedback``)
- :mod:`serving.server`     uvicorn hardened: header/body timeouts, a connection cap, one drain deadline
- :mod:`serving.cli`        ``modelyard serve``

Nothing here imports TensorFlow unless the SavedModel runtime is asked for.
"""
