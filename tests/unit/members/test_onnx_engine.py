"""The onnxruntime session: one thread, any batch size, and a clear refusal of a graph it
cannot run."""

from __future__ import annotations

import numpy as np
import pytest

from tickerserve.errors import InvalidModel
from tickerserve.members import onnx_proto as proto
from tickerserve.members.onnx_engine import OnnxSession


def test_it_converts_rows_to_the_graphs_input_type():
    model = proto.model(
        [proto.node("Identity", ["X"], ["Y"])],
        inputs=[proto.value_info("X", proto.DOUBLE, ["rows", 2])],
        outputs=[proto.value_info("Y", proto.DOUBLE, ["rows", 2])],
        opsets={"": 21},
    )
    session = OnnxSession(model)
    assert session.dtype is np.float64
    rows = np.asarray([[1.5, -2.0]], dtype=np.float32)
    out = session.run(rows)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, rows)


def test_a_graph_onnxruntime_refuses_is_an_invalid_model():
    with pytest.raises(InvalidModel, match="onnxruntime refused the tree graph"):
        OnnxSession(b"\x08\x01garbage")
