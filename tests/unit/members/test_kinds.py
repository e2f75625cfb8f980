"""What ``metadata.json`` says about each member (``MemberSpec``): written compactly, read back
the same, defaults for format-1 members, and artifact names that could leave the version
folder refused."""

from __future__ import annotations

import re

import pytest

from tickerserve.members.kinds import (
    LIGHTGBM,
    TREELITE,
    MemberSpec,
    expected_outputs,
)


def test_a_spec_round_trips_and_leaves_out_what_is_empty():
    full = MemberSpec(
        "xgb.treelite",
        weight=0.25,
        kind=TREELITE,
        name="xgb_model",
        options={"margin": "native"},
        estimator="XGBRegressor",
    )
    assert full.to_dict() == {
        "artifact": "xgb.treelite",
        "kind": "treelite",
        "weight": 0.25,
        "name": "xgb_model",
        "estimator": "XGBRegressor",
        "options": {"margin": "native"},
    }
    assert MemberSpec.from_dict(full.to_dict()) == full
    assert MemberSpec("model.txt").to_dict() == {
        "artifact": "model.txt",
        "kind": "lightgbm",
        "weight": 1.0,
    }


def test_a_format_1_member_is_a_lightgbm_member_of_weight_one():
    spec = MemberSpec.from_dict({"artifact": "model.txt"})
    assert (spec.kind, spec.weight, spec.name, spec.options) == (LIGHTGBM, 1.0, "", {})
    assert MemberSpec.from_dict({"artifact": "m.txt", "weight": "2"}).weight == 2.0


def test_options_must_be_an_object():
    with pytest.raises(TypeError, match=r"^member options must be an object$"):
        MemberSpec.from_dict({"artifact": "m.txt", "options": ["margin"]})


@pytest.mark.parametrize("artifact", ["../model.txt", "a/model.txt", "", ".hidden"])
def test_an_artifact_name_that_is_not_a_plain_file_name_is_refused(artifact: str):
    with pytest.raises(ValueError, match=f"^invalid artifact name {re.escape(repr(artifact))}$"):
        MemberSpec.from_dict({"artifact": artifact})


def test_a_classifier_member_answers_every_class_and_a_regressor_one_value():
    assert expected_outputs("classification", 5) == 5
    assert expected_outputs("classification", 2) == 2
    assert expected_outputs("regression", 0) == 1
