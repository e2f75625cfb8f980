"""An onnxruntime session on one thread, created from graph bytes.

One intra-op thread is what keeps the tree graphs exact: with more, onnxruntime may split a
row's trees between threads and merge partial sums (another order of additions). Batches
use several CPUs by splitting their rows instead (``row_split``), each part a ``run`` call
of its own (a session may run on several threads at once). ``onnxruntime`` is imported on
first use, so a function serving only LightGBM never pays for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tickerserve.errors import InvalidModel


def runtime() -> Any:
    """onnxruntime, imported on first use (a function serving only LightGBM never pays for
    it)."""
    try:
        import onnxruntime
    except ImportError as exc:  # the layer carries it; a bare development venv may not
        raise InvalidModel(f"onnxruntime is not installed: {exc}") from None
    return onnxruntime


def one_thread_session(data: bytes, refused: str) -> Any:
    """An ``InferenceSession`` over the graph bytes on one thread; ``InvalidModel``
    (``refused``: onnxruntime's reason) if onnxruntime refuses them."""
    ort = runtime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: no start-up notices in the function log
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        text = " ".join(str(exc).split())[:300]
        raise InvalidModel(f"{refused}: {text}") from None


class OnnxSession:
    """``run(rows) -> first output`` for a one-input graph."""

    def __init__(self, model: bytes) -> None:
        self._session = one_thread_session(model, "onnxruntime refused the tree graph")
        first = self._session.get_inputs()[0]
        self._input = first.name
        self.dtype = np.float64 if first.type == "tensor(double)" else np.float32

    def run(self, rows: np.ndarray) -> np.ndarray:
        """The graph's output for ``rows`` (converted to the graph's input type)."""
        data = np.ascontiguousarray(rows, dtype=self.dtype)
        return np.asarray(self._session.run(None, {self._input: data})[0])
