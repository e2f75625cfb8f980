"""Preprocessing as nodes in front of a graph: the new model is one the ``onnx`` package
checks and onnxruntime answers exactly as the numpy steps followed by the old graph, bit for
bit; steps or models it cannot take leave the model alone (None)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from tests.network_support import networks
from tickerserve.members.graph_prefix import INPUT, MAX_MODEL_BYTES, OUTPUT, prefixed, steps_only
from tickerserve.members.preprocessing import Preprocessing, Step


def converted(name: str) -> tuple[bytes, str, tuple[int, ...], list[str]]:
    """A converted network's graph, input name, input shape and outputs."""
    bundle = networks()[name].converted.bundle
    spec = bundle.metadata.members[0]
    outputs = [
        spec.options["outputs"][r] for r in ("main", "value") if r in spec.options["outputs"]
    ]
    return bundle.files[spec.artifact], spec.options["input"], tuple(spec.options["shape"]), outputs


def policy_steps(name: str) -> Preprocessing:
    bundle = networks()[name].converted.bundle
    spec = bundle.metadata.members[0]
    return Preprocessing.from_json(bundle.files["preprocessing.json"], spec.options["shape"])


def session(model: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def raw_inputs(shape: tuple[int, ...], n: int = 256) -> np.ndarray:
    """Inputs around and far beyond the training range, with NaN, infinities and values
    whose scaling overflows."""
    rng = np.random.default_rng(11)
    x = rng.normal(scale=20, size=(n, *shape))
    specials = np.array([np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0, 5e-324])
    x.reshape(n, -1)[: len(specials) * 4] = np.resize(specials, (len(specials) * 4, x[0].size))
    return x


def assert_same_answers(model: bytes, input_name: str, steps: Preprocessing, shape, outputs):
    new = prefixed(model, input_name, steps)
    assert new is not None
    onnx.checker.check_model(onnx.load_from_string(new), full_check=True)
    x = raw_inputs(shape)
    want = session(model).run(outputs, {input_name: steps.apply(x).astype(np.float32)})
    got = session(new).run(outputs, {INPUT: x})
    for mine, theirs in zip(got, want, strict=True):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        assert mine.tobytes() == theirs.tobytes()  # bit for bit, NaN payloads included


@pytest.mark.parametrize("name", ["ppo", "ppo_box", "ppo_rows"])
def test_a_policy_s_vecnormalize_in_the_graph_answers_bit_for_bit(name):
    model, input_name, shape, outputs = converted(name)
    assert_same_answers(model, input_name, policy_steps(name), shape, outputs)


def test_scaler_steps_with_per_feature_and_per_element_values_answer_bit_for_bit():
    # Given the GRU's graph (window 8 x 5) and a MinMaxScaler's steps: one value per feature,
    # one per element of the window, and a clip
    model, input_name, shape, outputs = converted("gru")
    rng = np.random.default_rng(3)
    steps = Preprocessing(
        (
            Step("multiply", values=rng.uniform(0.01, 3, size=shape[-1])),
            Step("add", values=rng.normal(size=shape)),
            Step("subtract", values=np.asarray(0.25)),
            Step("clip", low=np.asarray(-4.0), high=np.asarray(4.0)),
        )
    )
    # Then the prefixed graph answers what the steps then the graph answer
    assert_same_answers(model, input_name, steps, shape, outputs)


def test_the_input_is_float64_in_the_old_input_s_shape_and_the_rest_is_kept():
    model, input_name, _, outputs = converted("ppo_rows")
    new = prefixed(model, input_name, policy_steps("ppo_rows"))
    assert new is not None
    old, fresh = onnx.load_from_string(model), onnx.load_from_string(new)
    (graph_input,) = fresh.graph.input
    assert graph_input.name == INPUT
    assert graph_input.type.tensor_type.elem_type == TensorProto.DOUBLE
    assert graph_input.type.tensor_type.shape == old.graph.input[0].type.tensor_type.shape
    assert [o.name for o in fresh.graph.output] == [o.name for o in old.graph.output]
    assert list(fresh.graph.node)[4:] == list(old.graph.node)  # Sub, Div, Clip, Cast first
    assert [n.op_type for n in fresh.graph.node[:4]] == ["Sub", "Div", "Clip", "Cast"]
    assert fresh.opset_import == old.opset_import and fresh.ir_version == old.ir_version
    assert fresh.producer_name == old.producer_name
    assert {o.name for o in session(new).get_outputs()} >= set(outputs)


@pytest.mark.parametrize(
    "steps",
    [
        (Step("fill_missing", values=np.zeros(6)), Step("subtract", values=np.ones(6))),
        (Step("subtract", values=np.ones(6)), Step("clip_if_infinite", low=np.asarray(-1e6),
                                                   high=np.asarray(1e6))),
        (Step("clip", low=np.full(6, -1.0), high=np.full(6, 1.0)),),  # per-feature bounds
        (),
    ],
    ids=["fill-missing", "clip-if-infinite", "per-feature-clip", "no-steps"],
)  # fmt: skip
def test_steps_that_are_no_element_wise_nodes_leave_the_model_alone(steps):
    model, input_name, _, _ = converted("ppo")
    assert prefixed(model, input_name, Preprocessing(steps)) is None


def tiny_model(opset: int, input_name: str = "x", middle: str = "m") -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Neg", [input_name], [middle]), helper.make_node("Neg", [middle], ["y"])],
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)]
    ).SerializeToString()


def test_a_clip_needs_opset_12_and_the_other_steps_do_not():
    clip = Preprocessing((Step("clip", low=np.asarray(-1.0), high=np.asarray(1.0)),))
    scale = Preprocessing((Step("divide", values=np.full(3, 2.0)),))
    assert prefixed(tiny_model(11), "x", clip) is None
    assert prefixed(tiny_model(12), "x", clip) is not None
    fitted = prefixed(tiny_model(11), "x", scale)
    assert fitted is not None
    x = np.array([[1.0, -3.0, 1e-300]])
    np.testing.assert_array_equal(session(fitted).run(None, {INPUT: x})[0], [[0.5, -1.5, 0.0]])


@pytest.mark.parametrize(
    "model",
    [b"\xff\xff\xff", tiny_model(17)[:40], b"", tiny_model(17, "other"),
     tiny_model(17, middle="tickerserve/preprocessing/0")],
    ids=["garbage", "truncated", "empty", "no-such-input", "names-taken"],
)  # fmt: skip
def test_models_it_cannot_read_or_name_are_left_alone(model):
    steps = Preprocessing((Step("subtract", values=np.ones(3)),))
    assert prefixed(model, "x", steps) is None


@pytest.mark.parametrize("name", ["ppo", "ppo_rows"])
def test_the_nodes_alone_compute_the_steps_float64_numbers(name):
    steps = policy_steps(name)
    shape = tuple(networks()[name].converted.bundle.metadata.members[0].options["shape"])
    alone = steps_only(steps, shape)
    assert alone is not None
    onnx.checker.check_model(onnx.load_from_string(alone), full_check=True)
    x = raw_inputs(shape)
    (computed,) = session(alone).run([OUTPUT], {INPUT: x})
    assert computed.dtype == np.float64 and computed.tobytes() == steps.apply(x).tobytes()
    assert steps_only(Preprocessing((Step("fill_missing", values=np.zeros(6)),)), (6,)) is None


def test_a_float64_graph_or_one_past_the_size_cap_keeps_its_steps_in_numpy():
    steps = Preprocessing((Step("multiply", values=np.full(3, 2.0)),))
    # A float64 graph: its first node could take the step into itself (other numbers)
    graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"])],
        "double",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["batch", 3])],
    )
    double = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert prefixed(double.SerializeToString(), "x", steps) is None
    # A graph over MAX_MODEL_BYTES (here a large unused initializer)
    big = onnx.load_from_string(tiny_model(17))
    weights = np.zeros(MAX_MODEL_BYTES // 4 + 1, dtype=np.float32)
    big.graph.initializer.append(onnx.numpy_helper.from_array(weights, "unused"))
    assert len(big.SerializeToString()) > MAX_MODEL_BYTES
    assert prefixed(big.SerializeToString(), "x", steps) is None
    assert prefixed(tiny_model(17), "x", steps) is not None
