"""The guard: which features of a row are out of the version's range or missing where the
reference had no missing value; its fast path (numpy and a byte comparison) must agree with a
plain per-feature reading of the rule on every row."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tickerserve.baselines.ranges import FeatureRange, Ranges
from tickerserve.serving.guard import Guard

NAMES = ["rsi_14", "iv_rank", "hv_20", "volume_z", "unranged"]
RANGES = Ranges(
    (0.001, 0.999),
    {
        "rsi_14": FeatureRange(10.0, 90.0, 0.0),  # never missing in the reference
        "iv_rank": FeatureRange(0.0, 1.0, 0.05),  # sometimes missing
        "hv_20": FeatureRange(-0.5, 0.5, 0.0),
        "volume_z": FeatureRange(None, None, 1.0),  # the reference never had a value
    },
)


def expected(row: list[float]) -> list[dict[str, object]]:
    """The rule, read feature by feature."""
    out: list[dict[str, object]] = []
    for name, value in zip(NAMES, row, strict=True):
        known = RANGES.features.get(name)
        if known is None:
            continue
        shown = None if known.lo is None else [known.lo, known.hi]
        if math.isnan(value):
            if known.missing_share == 0:
                out.append({"feature": name, "code": "unexpected_missing", "value": None,
                            "range": shown})  # fmt: skip
        elif known.lo is not None and known.hi is not None and not known.lo <= value <= known.hi:
            out.append({"feature": name, "code": "out_of_range", "value": value, "range": shown})
    return out


def test_a_row_like_the_reference_has_no_warnings_and_each_difference_one() -> None:
    guard = Guard(NAMES, RANGES)
    nan = math.nan
    assert guard.check(np.array([50.0, 0.5, 0.0, 3.0, 1e9])) == []
    # the ends of a range are inside it; an expected missing value is no warning
    assert guard.check(np.array([10.0, nan, 0.5, nan, nan])) == []
    assert guard.check(np.array([140.2, 0.5, nan, 0.0, 0.0])) == [
        {"feature": "rsi_14", "code": "out_of_range", "value": 140.2, "range": [10.0, 90.0]},
        {"feature": "hv_20", "code": "unexpected_missing", "value": None, "range": [-0.5, 0.5]},
    ]
    assert guard.check(np.array([nan, -0.01, 0.6, 0.0, 0.0])) == [
        {"feature": "rsi_14", "code": "unexpected_missing", "value": None, "range": [10.0, 90.0]},
        {"feature": "iv_rank", "code": "out_of_range", "value": -0.01, "range": [0.0, 1.0]},
        {"feature": "hv_20", "code": "out_of_range", "value": 0.6, "range": [-0.5, 0.5]},
    ]


def test_the_fast_path_agrees_with_the_rule_on_every_row() -> None:
    # Rows near the ranges' ends, with missing values and signed zeros mixed in
    rng = np.random.default_rng(21)
    guard = Guard(NAMES, RANGES)
    centre = np.array([50.0, 0.5, 0.0, 0.0, 0.0])
    spread = np.array([45.0, 0.55, 0.55, 5.0, 5.0])
    rows = centre + spread * rng.uniform(-1, 1, size=(4000, 5))
    rows[rng.random(rows.shape) < 0.05] = np.nan
    rows[rng.random(rows.shape) < 0.02] = -0.0
    rows[::7, 1] = 1.0  # exactly at an end
    for row in rows:
        assert guard.check(row) == expected(row.tolist())
    # and a batch's check is each row's
    assert guard.check_rows(rows) == [expected(r) for r in rows.tolist()]
    clean = centre + spread * 0.1 * rng.uniform(-1, 1, size=(50, 5))
    assert guard.check_rows(clean) == [[]] * 50


def test_a_zero_at_the_bottom_of_a_range_is_inside_it_whatever_its_sign() -> None:
    guard = Guard(["x"], Ranges((0.001, 0.999), {"x": FeatureRange(0.0, 1.0, 0.0)}))
    assert guard.check(np.array([-0.0])) == []
    assert guard.check_rows(np.array([[-0.0], [0.0], [-1e-300]])) == [
        [],
        [],
        [{"feature": "x", "code": "out_of_range", "value": -1e-300, "range": [0.0, 1.0]}],
    ]


def test_ranges_that_cover_no_used_feature_make_no_guard() -> None:
    assert Guard.of(["a", "b"], RANGES) is None
    assert Guard.of(["a", "b"], None) is None
    guard = Guard.of(["a", "rsi_14"], RANGES)
    assert guard is not None
    assert guard.check(np.array([1e12, 95.0]))[0]["feature"] == "rsi_14"


@pytest.mark.parametrize("width", [1, 36, 200])
def test_the_check_leaves_the_row_as_it_was(width: int) -> None:
    names = [f"f{i}" for i in range(width)]
    ranges = Ranges((0.0, 1.0), {n: FeatureRange(-1.0, 1.0, 0.0) for n in names})
    row = np.linspace(-2, 2, width)
    before = row.copy()
    Guard(names, ranges).check(row)
    assert np.array_equal(row, before)
