"""The ``network`` object of a version's metadata: what a network takes and answers, read back
as written, and refused when it cannot describe a servable network."""

from __future__ import annotations

import pytest

from tickerserve.members.network import BOX, DISCRETE, NetworkSpec, Policy


def test_a_window_model_round_trips_and_takes_rows():
    spec = NetworkSpec("window", (60, 20), outputs=["ret_1h", "ret_4h"])
    again = NetworkSpec.from_dict(spec.to_dict())
    assert again == spec
    assert (again.rows, again.n_features) == (60, 20)


def test_a_one_row_observation_has_no_rows():
    spec = NetworkSpec.from_dict(
        {
            "input": "observation",
            "shape": [20],
            "value": True,
            "policy": {"action_space": "discrete", "labelled": True},
        }
    )
    assert spec.rows is None and spec.n_features == 20
    assert spec.policy == Policy(DISCRETE, labelled=True)


def test_a_box_policy_keeps_its_bounds():
    raw = {
        "input": "observation",
        "shape": [4, 6],
        "outputs": ["action_0"],
        "policy": {"action_space": "box", "low": [-1.0], "high": [1.0]},
    }
    spec = NetworkSpec.from_dict(raw)
    assert spec.policy == Policy(BOX, low=[-1.0], high=[1.0])
    assert spec.to_dict()["policy"] == raw["policy"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"input": "window", "shape": [60]}, "a window is"),
        ({"input": "image", "shape": [3]}, "network input must be one of"),
        ({"input": "window", "shape": [0, 3]}, "positive integers"),
        ({"input": "window", "shape": [2, 3, 4]}, "one or two"),
        ({"input": "window", "shape": [2000, 1000]}, "at most 1000000 numbers"),
        ({"input": "window", "shape": [2, 3], "outputs": ["a", "a"]}, "duplicates"),
        (
            {"input": "window", "shape": [2, 3], "policy": {"action_space": "discrete"}},
            "a policy takes an observation",
        ),
        (
            {"input": "observation", "shape": [3], "policy": {"action_space": "multi"}},
            "action_space must be one of",
        ),
        (
            {
                "input": "observation",
                "shape": [3],
                "policy": {"action_space": "box", "low": [1.0], "high": [-1.0]},
            },
            "not be above",
        ),
        ({"input": "observation", "shape": [3], "value": "yes"}, "true or false"),
    ],
)
def test_impossible_networks_are_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        NetworkSpec.from_dict(raw)
