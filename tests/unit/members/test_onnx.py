"""ONNX members: a converted network answers what its torch original answers, on one
onnxruntime session with one thread, and bytes or options that do not fit are refused naming
the artifact (after a probe child, like every member)."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.network_support import networks
from tickerserve.errors import InvalidModel
from tickerserve.members import onnx as onnx_member
from tickerserve.members.graph_prefix import INPUT, prefixed, steps_only
from tickerserve.members.kinds import MemberSpec
from tickerserve.members.onnx import OnnxMember
from tickerserve.members.preprocessing import Preprocessing
from tickerserve.members.safe_load import clear_verdicts


def gru_member() -> tuple[OnnxMember, MemberSpec, dict[str, bytes]]:
    bundle = networks()["gru"].converted.bundle
    spec = bundle.metadata.members[0]
    return (
        OnnxMember.from_bytes(bundle.files[spec.artifact], spec, bundle.files),
        spec,
        bundle.files,
    )


def test_a_gru_member_answers_like_its_torch_original():
    # Given the seed's GRU, its preprocessor and the converted member
    member, _, _ = gru_member()
    network = networks()["gru"]
    imputer, scaler = network.extra["imputer"], network.extra["scaler"]
    rng = np.random.default_rng(4)
    windows = rng.normal(scale=10, size=(32, 8, 5))
    windows[rng.random(windows.shape) < 0.05] = np.nan
    # When the member predicts raw windows (flat, rows one after another)
    mine = member.predict(windows.reshape(32, 40))
    # Then it answers what the torch module answers on the seed's own preprocessing
    scaled = scaler.transform(imputer.transform(windows.reshape(-1, 5))).reshape(32, 8, 5)
    with torch.no_grad():
        theirs = network.original(torch.as_tensor(scaled, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    assert mine.shape == (32, 1) and mine.dtype == np.float64
    assert (member.n_features, member.n_outputs, member.shape) == (5, 1, (8, 5))


def test_the_session_runs_on_one_thread():
    member, _, _ = gru_member()
    options = member.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)


def test_a_policy_member_answers_its_value_beside_the_probabilities():
    bundle = networks()["ppo"].converted.bundle
    spec = bundle.metadata.members[0]
    member = OnnxMember.from_bytes(bundle.files[spec.artifact], spec, bundle.files)
    probabilities, value = member.run(np.zeros((3, 6)))
    assert probabilities.shape == (3, 3) and value is not None and value.shape == (3,)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_bytes_onnxruntime_cannot_read_are_an_invalid_model_naming_the_artifact():
    clear_verdicts()
    _, spec, files = gru_member()
    with pytest.raises(InvalidModel) as caught:
        OnnxMember.from_bytes(b"\x08\x07garbage", spec, files)
    assert caught.value.message.startswith("model.onnx: not an ONNX model onnxruntime can run: ")
    assert "INVALID_PROTOBUF" in caught.value.message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"input": "x"}, r"the graph's inputs are window, metadata names one input 'x'"),
        ({"outputs": {"main": "y"}}, r"model\.onnx: the graph has no output 'y' \(it has output\)"),
        ({"shape": [9, 5]}, r"model\.onnx: the graph takes \['batch', 8, 5\], metadata says"),
        ({"preprocessing": "scaler.json"}, r"scaler\.json is not an artifact of the version"),
        ({"outputs": {"main": "output", "critic": "v"}}, "onnx outputs are named by role"),
    ],
)
def test_options_that_do_not_fit_the_graph_are_refused(options, message):
    _, spec, files = gru_member()
    changed = dataclasses.replace(spec, options={**spec.options, **options})
    with pytest.raises(InvalidModel, match=message):
        OnnxMember.from_bytes(files[spec.artifact], changed, files)


def test_malformed_preprocessing_is_an_invalid_model():
    _, spec, files = gru_member()
    broken = {**files, "preprocessing.json": b'{"steps": [{"op": "divide", "values": 0}]}'}
    with pytest.raises(InvalidModel, match=r"^model\.onnx: divide by zero in preprocessing$"):
        OnnxMember.from_bytes(files[spec.artifact], spec, broken)


def member_of(name: str) -> OnnxMember:
    bundle = networks()[name].converted.bundle
    spec = bundle.metadata.members[0]
    return OnnxMember.from_bytes(bundle.files[spec.artifact], spec, bundle.files)


def plain_session_answers(name: str, inputs: np.ndarray) -> list[list[np.ndarray]]:
    """Each input (flat, one at a time) through a session of onnxruntime's own, after the
    preprocessing's own ``apply``: what a member must answer."""
    bundle = networks()[name].converted.bundle
    spec = bundle.metadata.members[0]
    shape, pre = spec.options["shape"], spec.options.get("preprocessing")
    steps = None if pre is None else Preprocessing.from_json(bundle.files[pre], shape)
    session = ort.InferenceSession(bundle.files[spec.artifact], providers=["CPUExecutionProvider"])
    fetch = [
        spec.options["outputs"][role]
        for role in ("main", "value")
        if role in spec.options["outputs"]
    ]
    out = []
    for row in inputs:
        x = row.reshape(1, *shape)
        ready = (x if steps is None else steps.apply(x)).astype(np.float32)
        out.append(session.run(fetch, {spec.options["input"]: ready}))
    return out


@pytest.mark.parametrize("name", ["gru", "gru_classifier", "ppo", "ppo_box", "ppo_rows"])
def test_one_input_at_a_time_answers_exactly_a_plain_session_run(name):
    # Given a member and raw inputs (some with missing values the imputer fills)
    member = member_of(name)
    rng = np.random.default_rng(6)
    inputs = rng.normal(scale=8, size=(24, math.prod(member.shape)))
    if member.preprocessing is not None and member.preprocessing.fills_missing:
        inputs[rng.random(inputs.shape) < 0.1] = np.nan
    # When each is answered on its own, one after another (the bound buffers reused)
    answers = [member.run(row[None]) for row in inputs]
    # Then each answer is what onnxruntime's own session.run gives, bit for bit, and no
    # answer changed when the next input ran
    for (main, value), want in zip(answers, plain_session_answers(name, inputs), strict=True):
        np.testing.assert_array_equal(main, want[0].astype(np.float64).reshape(1, -1))
        if member.has_value:
            np.testing.assert_array_equal(value, want[1].astype(np.float64).reshape(1))
        else:
            assert value is None


def test_threads_answering_one_input_at_a_time_each_get_their_own_answers():
    # Given the 60-row GRU and inputs, and its answers one by one on this thread
    member = member_of("gru_long")
    rng = np.random.default_rng(7)
    inputs = rng.normal(scale=5, size=(40, 60 * 20))
    want = [member.predict(row[None]) for row in inputs]

    # When four threads answer them all at once, each in its own order
    def answer(seed: int) -> list[tuple[int, np.ndarray]]:
        order = np.random.default_rng(seed).permutation(len(inputs))
        return [(int(i), member.predict(inputs[i][None])) for i in order]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(answer, range(4)))
    # Then every thread got each input's own answer
    for done in results:
        for i, got in done:
            np.testing.assert_array_equal(got, want[i])


# -- preprocessing run inside the graph ---------------------------------------------------------
@pytest.mark.parametrize("name", ["ppo", "ppo_box", "ppo_rows"])
def test_a_policy_member_runs_its_vecnormalize_inside_the_graph(name):
    # Given a converted policy (VecNormalize: subtract, divide, clip)
    member = member_of(name)
    # Then onnxruntime takes the raw observation in float64 and numpy computes nothing first
    assert member.in_graph is not None and member.preprocessing is None
    assert [s.op for s in member.in_graph.steps] == ["subtract", "divide", "clip"]
    (graph_input,) = member.session.get_inputs()
    assert (graph_input.name, graph_input.type) == (INPUT, "tensor(double)")


def test_steps_no_graph_node_can_run_stay_in_numpy():
    # The seed's DataPreprocessor fills missing values and clips a window that overflowed
    member = member_of("gru")
    assert member.in_graph is None and member.preprocessing is not None
    assert member.session.get_inputs()[0].type == "tensor(float)"


def nudged(steps: Preprocessing, by: float) -> Preprocessing:
    """The steps with the first one's values changed: relatively ``by``, or by one unit in
    the last place when ``by`` is 0 (as an optimization that rewrote the arithmetic would)."""
    first, *rest = steps.steps
    values = first.values * (1 + by) if by else np.nextafter(first.values, np.inf)
    return Preprocessing((dataclasses.replace(first, values=values), *rest))


def answers_exactly_as_numpy_then_the_graph(member: OnnxMember) -> None:
    inputs = np.random.default_rng(8).normal(scale=8, size=(12, 6))
    for row, want in zip(inputs, plain_session_answers("ppo", inputs), strict=True):
        np.testing.assert_array_equal(member.run(row[None])[0], want[0].astype(np.float64))


def test_a_prefixed_graph_that_answers_otherwise_is_not_used(monkeypatch, caplog):
    # Given a prefix whose answers differ from the member's (the mean off by 0.1 %)
    def off(model: bytes, input_name: str, steps: Preprocessing) -> bytes | None:
        return prefixed(model, input_name, nudged(steps, 1e-3))

    monkeypatch.setattr(onnx_member, "prefixed", off)
    # When the policy loads, it keeps its numpy steps and answers exactly as before
    member = member_of("ppo")
    assert member.in_graph is None and member.preprocessing is not None
    answers_exactly_as_numpy_then_the_graph(member)
    assert "model.onnx: preprocessing stays in numpy (the graph's numbers differ)" in caplog.text


def test_nodes_that_compute_other_float64_numbers_are_not_used(monkeypatch, caplog):
    # Given nodes one unit in the last place off (hidden in the graph's answers by the cast
    # to float32, shown by the nodes alone)
    def off(steps: Preprocessing, shape: tuple[int, ...]) -> bytes | None:
        return steps_only(nudged(steps, 0), shape)

    monkeypatch.setattr(onnx_member, "steps_only", off)
    member = member_of("ppo")
    assert member.in_graph is None and member.preprocessing is not None
    answers_exactly_as_numpy_then_the_graph(member)
    assert "model.onnx: preprocessing stays in numpy (the graph's numbers differ)" in caplog.text


def test_a_step_that_multiplies_by_zero_warns_nothing_and_runs_in_the_graph():
    # Given a policy whose preprocessing zeroes one feature (its inverse divides by zero)
    bundle = networks()["ppo"].converted.bundle
    spec = bundle.metadata.members[0]
    steps = {"steps": [{"op": "multiply", "values": [1.0, 0.0, 2.0, 1.0, 0.5, 1.0]},
                       {"op": "add", "values": 0.25}]}  # fmt: skip
    files = {**bundle.files, "preprocessing.json": json.dumps(steps).encode()}
    pre = Preprocessing.from_json(files["preprocessing.json"], [6])
    # Then its check inputs are finite numbers, drawn without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = onnx_member._check_inputs(pre, (6,))
    assert rows.shape[1] == 6 and np.isfinite(rows).all()
    # And the member runs the steps in the graph, exactly as numpy then the graph (the check
    # rows of 1e300 overflow float32 on the numpy side, as they would for the original)
    with np.errstate(over="ignore"):
        member = OnnxMember.from_bytes(files[spec.artifact], spec, files)
    assert member.in_graph is not None
    x = np.random.default_rng(9).normal(scale=4, size=(5, 6))
    session = ort.InferenceSession(files[spec.artifact], providers=["CPUExecutionProvider"])
    ready = {"observation": pre.apply(x).astype(np.float32)}
    (want,) = session.run([spec.options["outputs"]["main"]], ready)
    np.testing.assert_array_equal(member.predict(x), want.astype(np.float64))
