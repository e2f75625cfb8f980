"""Network answers in the shapes tree models answer: a value or named values, a label with
probabilities, a policy's action (index and label, or the clipped box action) and its value."""

from __future__ import annotations

import numpy as np

from tickerserve.members.network import NetworkSpec, Policy
from tickerserve.serving.capture import output_of
from tickerserve.serving.model import Prediction
from tickerserve.serving.network_answers import network_answer


def test_one_regression_output_is_the_prediction():
    spec = NetworkSpec("window", (8, 5))
    answer = network_answer({}, spec, "regression", [], Prediction(np.array([0.5, 0.25]), None), 1)
    assert answer == {"prediction": 0.25}
    assert output_of(answer) == ("regression", {"value": 0.25})


def test_several_outputs_are_named_values_and_the_first_is_monitored():
    spec = NetworkSpec("window", (8, 5), outputs=["ret_1h", "ret_4h"])
    result = Prediction(np.array([[0.1, 0.2], [0.3, 0.4]]), None)
    answer = network_answer({}, spec, "regression", [], result, 1)
    assert answer == {"prediction": {"ret_1h": 0.3, "ret_4h": 0.4}}
    assert output_of(answer) == (
        "regression",
        {"value": 0.3, "values": {"ret_1h": 0.3, "ret_4h": 0.4}},
    )


def test_a_classifier_answers_a_label_with_probabilities():
    spec = NetworkSpec("window", (8, 5))
    result = Prediction(np.array([[0.2, 0.5, 0.3]]), None)
    answer = network_answer({}, spec, "classification", ["down", "flat", "up"], result, 0)
    assert answer == {
        "prediction": "flat",
        "confidence": 0.5,
        "probabilities": {"down": 0.2, "flat": 0.5, "up": 0.3},
    }


def test_a_discrete_policy_answers_the_action_its_label_and_the_value():
    spec = NetworkSpec("observation", (6,), policy=Policy("discrete", labelled=True), value=True)
    result = Prediction(np.array([[0.1, 0.7, 0.2]]), None, np.array([1.5]))
    answer = network_answer({}, spec, "classification", ["hold", "buy", "sell"], result, 0)
    assert answer == {
        "prediction": "buy",
        "confidence": 0.7,
        "probabilities": {"hold": 0.1, "buy": 0.7, "sell": 0.2},
        "action": 1,
        "label": "buy",
        "value": 1.5,
    }
    task, output = output_of(answer)
    assert task == "classification"
    assert output == {
        "label": "buy",
        "probabilities": answer["probabilities"],
        "action": 1,
        "critic_value": 1.5,
    }


def test_unlabelled_actions_answer_the_index_without_a_label():
    spec = NetworkSpec("observation", (6,), policy=Policy("discrete"))
    result = Prediction(np.array([[0.6, 0.4]]), None)
    answer = network_answer({}, spec, "classification", ["0", "1"], result, 0)
    assert answer["action"] == 0 and answer["prediction"] == "0" and "label" not in answer


def test_a_box_policy_answers_its_action_as_a_list():
    spec = NetworkSpec(
        "observation",
        (4, 6),
        outputs=["action_0", "action_1"],
        policy=Policy("box", low=[-1, -1], high=[1, 1]),
        value=True,
    )
    result = Prediction(np.array([[-1.0, 0.25]]), None, np.array([0.5]))
    answer = network_answer({}, spec, "regression", [], result, 0)
    assert answer == {"action": [-1.0, 0.25], "value": 0.5}
    assert output_of(answer) == (
        "regression",
        {"value": -1.0, "action": [-1.0, 0.25], "critic_value": 0.5},
    )


def test_a_one_dimensional_box_action_is_still_a_list():
    spec = NetworkSpec(
        "observation", (6,), outputs=["action_0"], policy=Policy("box", low=[-1], high=[1])
    )
    answer = network_answer({}, spec, "regression", [], Prediction(np.array([0.75]), None), 0)
    assert answer == {"action": [0.75]}
