"""The conversion check: a network bundle is compared with its original on generated inputs,
refused above the relative tolerance or where its choices differ, and the export is one file
with a dynamic batch."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch

from tests.network_support import networks
from tickerserve.members.preprocessing import Preprocessing, Step
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.network_bundle import (
    agree,
    check_inputs,
    check_network,
    compare,
    export_onnx,
    load,
)


def test_compare_measures_the_difference_relative_to_the_largest_output():
    theirs = np.array([[100.0], [-50.0], [0.001]])
    mine = theirs + np.array([[1e-4], [0.0], [0.0]])
    absolute, relative = compare("x", mine, theirs)
    assert absolute == pytest.approx(1e-4) and relative == pytest.approx(1e-6)


def test_compare_refuses_above_the_tolerance_with_the_figures():
    with pytest.raises(NotConvertible) as caught:
        compare("the network's output", np.array([[1.0], [2.0]]), np.array([[1.0], [2.001]]))
    assert caught.value.message == (
        "the network's output does not match the original: max difference 0.001 "
        "(0.0005 relative, above 1e-05) on 2 inputs"
    )


def test_compare_refuses_other_shapes_and_non_finite_outputs():
    with pytest.raises(NotConvertible, match=r"converted shape \(2, 1\), original \(2, 2\)"):
        compare("x", np.zeros((2, 1)), np.zeros((2, 2)))
    with pytest.raises(NotConvertible, match="non-finite outputs"):
        compare("x", np.array([[np.nan]]), np.array([[1.0]]))


def test_agree_ignores_near_ties_and_refuses_other_choices():
    theirs = np.array([[0.5, 0.5 + 1e-9], [0.2, 0.8]])
    agree(np.array([[0.51, 0.49], [0.2, 0.8]]), theirs)  # the tie may go either way
    with pytest.raises(NotConvertible, match="chooses differently from the original on 1 of 2"):
        agree(np.array([[0.51, 0.49], [0.9, 0.1]]), theirs)


def test_check_inputs_land_in_the_networks_input_space():
    steps = Preprocessing(
        (
            Step("subtract", values=np.array([100.0, -3.0])),
            Step("divide", values=np.array([10.0, 0.5])),
        )
    )
    x = check_inputs((4, 2), steps, rows=256, missing=True)
    assert x.shape == (256, 8)
    z = steps.apply(x.reshape(256, 4, 2))
    present = z[~np.isnan(z)]
    # Mostly within a few standard deviations of the training data, a few far out
    assert abs(np.median(present)) < 0.5 and (np.abs(present) >= 11.9).any()
    assert 0.03 < np.isnan(x).mean() < 0.08
    np.testing.assert_array_equal(x[~np.isnan(x)], x[~np.isnan(x)].astype(np.float32))


def test_the_export_is_one_onnx_file_with_a_dynamic_batch():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 2))
    graph = export_onnx(net, (3, 2), input_name="window", output_names=["output"])
    model = onnx.load_from_string(graph)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, 2]
    assert model.opset_import[0].version == 17
    assert not any(
        init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer
    )


def test_check_network_refuses_an_original_that_answers_otherwise():
    bundle = networks()["gru"].converted.bundle
    loaded = load(bundle)
    x = check_inputs((8, 5), None, rows=32)

    def off(inputs: np.ndarray) -> tuple[np.ndarray, None]:
        return loaded.predict(inputs).outputs.reshape(-1, 1) * 1.01, None

    with pytest.raises(NotConvertible, match=r"does not match the original: .* on 32 inputs"):
        check_network(bundle, x, off)


def test_check_network_records_what_it_measured():
    bundle = copy.deepcopy(networks()["ppo"].converted.bundle)  # the shared one stays as it is
    loaded = load(bundle)
    x = check_inputs((6,), None, rows=64)

    def same(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        result = loaded.predict(inputs)
        return result.outputs, result.value

    check = check_network(bundle, x, same)
    assert (check.inputs, check.max_abs_diff, check.max_relative_diff) == (64, 0.0, 0.0)
    assert bundle.metadata.source["probe"]["rows"] == 64
