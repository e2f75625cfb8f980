"""Class labels in output order: the strings a pickled ``LabelEncoder`` (or the metadata's list)
kept for a classifier trained on integers, checked against the model's own classes."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.preprocessing import LabelEncoder

from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.labels import class_labels

STRATEGIES = ["BULL_PUT_SPREAD", "IRON_CONDOR", "NO_TRADE"]


def encoder() -> LabelEncoder:
    return LabelEncoder().fit(["NO_TRADE", "IRON_CONDOR", "BULL_PUT_SPREAD"])


def labels(classes: list, **kwargs) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    return class_labels(classes, notes=notes, label="etfs/SMH", **kwargs), notes


def test_an_encoder_names_integer_classes_in_output_order():
    assert labels([0, 1, 2], encoder=encoder()) == (STRATEGIES, [])
    assert labels(list(np.array([2, 0])), encoder=encoder()) == (
        ["NO_TRADE", "BULL_PUT_SPREAD"],
        [],
    )


def test_listed_classes_name_integer_classes_when_there_is_no_encoder():
    assert labels([1, 0], listed=["DOWN", "UP"]) == (["UP", "DOWN"], [])


def test_without_names_integer_classes_become_strings_and_the_note_says_so():
    assert labels([0, 1], listed=["ONLY"]) == (
        ["0", "1"],
        ["no label encoder: class labels are the model's integer classes"],
    )


def test_string_classes_are_kept_and_checked_against_an_encoder():
    assert labels(["IRON_CONDOR", "NO_TRADE"]) == (["IRON_CONDOR", "NO_TRADE"], [])
    assert labels(np.array(["IRON_CONDOR"]).tolist(), encoder=encoder())[0] == ["IRON_CONDOR"]
    with pytest.raises(NotConvertible) as caught:
        labels(["IRON_CONDOR", "STRANGLE"], encoder=encoder())
    assert caught.value.message == (
        "etfs/SMH: unknown class label 'STRANGLE': not in the label encoder"
    )


@pytest.mark.parametrize(
    ("classes", "kwargs", "message"),
    [
        ([0, 1, 3], {"encoder": encoder()},
         "etfs/SMH: unknown class label 3: the label encoder knows 3 classes"),
        ([0, 2], {"listed": ["UP", "DOWN"]},
         "etfs/SMH: unknown class label 2: the listed classes knows 2 classes"),
        ([0, 1], {"encoder": encoder(), "indices_only": True},
         "etfs/SMH: the model outputs 2 classes but the label encoder lists 3"),
        ([0, 1], {"encoder": object()},
         "etfs/SMH: the label encoder has no classes_ (got object)"),
    ],
)  # fmt: skip
def test_names_that_cannot_be_the_models_classes_are_refused(classes, kwargs, message: str):
    with pytest.raises(NotConvertible, match=f"^{re.escape(message)}$"):
        labels(classes, **kwargs)


def test_boolean_classes_are_not_indices():
    assert labels([False, True], listed=["NO", "YES"])[0] == ["False", "True"]
