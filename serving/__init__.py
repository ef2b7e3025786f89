"""modelyard serving: a FastAPI inference server for the model repository.

- :mod:`serving.runtimes`  one small interface (load, warm up, predict a batch) per runtime
- :mod:`serving.codecs`    TF Serving / KServe V2 request bodies -> model input, outputs -> answers
- :mod:`serving.batching`  work-conserving dynamic batching with a bounded queue; inference in a worker thread
                           (inline for batches that run faster than the handoff)
- :mod:`serving.registry`  versions, labels, traffic split, shadow, polling and hot reload
- :mod:`serving.metrics`   Prometheus metrics
- :mod:`serving.app`       the predict fast path and the FastAPI routes
- :mod:`serving.cli`       ``modelyard serve``

Nothing here imports TensorFlow unless the SavedModel runtime is asked for.
"""
