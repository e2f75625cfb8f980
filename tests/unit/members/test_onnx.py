"""ONNX members: a converted network answers what its torch original answers, on one
onnxruntime session with one thread, and bytes or options that do not fit are refused naming
the artifact (after a probe child, like every member)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.network_support import networks
from tickerserve.errors import InvalidModel
from tickerserve.members.kinds import MemberSpec
from tickerserve.members.onnx import OnnxMember
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
