"""TensorFlow, its TFLite converter, LiteRT and onnxruntime's quantizer write notices of their own straight to the
process's stdout and stderr (absl start-up lines, "fully_quantize: 0, ...", "Created TensorFlow Lite XNNPACK
delegate", "Please consider pre-processing"), past ``TF_CPP_MIN_LOG_LEVEL`` and Python's logging settings.
:func:`native_output_held` holds them back around the calls that print them and shows them only when the call
fails, so the console keeps to modelyard's own progress lines. No TensorFlow import here."""

from __future__ import annotations

import contextlib
import io
import sys
import warnings

from wurlitzer import pipes


@contextlib.contextmanager
def native_output_held():
    """Capture what the block writes to file descriptors 1 and 2 (C++ libraries and Python alike); print it
    to stderr if the block raises. Wrap single library calls, not code whose progress should show."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with pipes(stdout=out, stderr=err), warnings.catch_warnings():
            # TF's own int8 calibration still builds a tf.lite.Interpreter; modelyard runs TFLite with LiteRT
            warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
            yield
    except BaseException:
        sys.stderr.write(out.getvalue() + err.getvalue())
        raise
