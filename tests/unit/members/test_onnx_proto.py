"""The ONNX writer: what it writes, the ``onnx`` package reads back field for field, its
checker accepts, and onnxruntime runs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from tickerserve.members import onnx_proto as proto


@pytest.mark.parametrize(
    "values",
    [
        [0, 1, 127, 128, 255, 256, 16383, 16384, 2**21, 2**28 - 1, 2**31, 2**35, 2**62,
         2**63 - 1],
        [-1, -2, -(2**31), -(2**63)],
        list(range(0, 5000, 7)),
    ],
)  # fmt: skip
def test_packed_integers_read_back_as_written(values):
    # Given an attribute of integers, from single-byte varints to ten-byte negative ones
    attribute = proto.Attribute.of_ints("numbers", np.asarray(values, dtype=np.int64))
    # When onnx parses the encoded AttributeProto
    parsed = onnx.AttributeProto.FromString(attribute.encoded)
    # Then every value is back, in order
    assert parsed.name == "numbers"
    assert list(parsed.ints) == values


def test_scalars_strings_floats_and_tensors_read_back():
    encoded = {
        "i": proto.Attribute.of_int("i", -5),
        "f": proto.Attribute.of_float("f", 0.25),
        "s": proto.Attribute.of_string("s", "SUM"),
        "fs": proto.Attribute.of_floats("fs", np.asarray([1.5, -0.0, 3e38])),
        "ss": proto.Attribute.of_strings("ss", ["LEAF", "BRANCH_LEQ", "LEAF"]),
        "t": proto.Attribute.of_tensor("t", np.asarray([0.1, -2.5]), proto.DOUBLE),
    }
    parsed = {k: onnx.AttributeProto.FromString(a.encoded) for k, a in encoded.items()}
    assert parsed["i"].i == -5
    assert parsed["f"].f == 0.25
    assert parsed["s"].s == b"SUM"
    assert list(parsed["fs"].floats) == [1.5, -0.0, np.float32(3e38)]
    assert list(parsed["ss"].strings) == [b"LEAF", b"BRANCH_LEQ", b"LEAF"]
    np.testing.assert_array_equal(numpy_helper.to_array(parsed["t"].t), [0.1, -2.5])


def test_a_written_model_passes_the_checker_and_runs():
    # Given a one-node graph: Y = X + X, with a symbolic batch dimension
    model = proto.model(
        [proto.node("Add", ["X", "X"], ["Y"])],
        inputs=[proto.value_info("X", proto.DOUBLE, ["rows", 3])],
        outputs=[proto.value_info("Y", proto.DOUBLE, ["rows", 3])],
        opsets={"": 21},
    )
    # Then onnx accepts it and onnxruntime computes it, for any batch size
    onnx.checker.check_model(onnx.load_from_string(model))
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.testing.assert_array_equal(session.run(None, {"X": x})[0], 2 * x)
