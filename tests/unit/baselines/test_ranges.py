"""Feature ranges: fitted from a reference sample with the baseline (the quantiles a setting),
estimated never narrower for baselines fitted before ranges existed, read back only when they
are what this runtime understands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.monitor_support import classification_baseline, reference_rows
from tickerserve.baselines.baseline import Baseline, fit_histogram
from tickerserve.baselines.ranges import (
    DEFAULT_QUANTILES,
    FeatureRange,
    Ranges,
    RangesError,
    estimate,
    fit_ranges,
    parse_quantiles,
)


def test_ranges_are_the_reference_s_quantiles_and_missing_shares() -> None:
    # Given a reference with gaps in one feature and no value at all in another
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.normal(size=5000), rng.uniform(0, 10, 5000), np.full(5000, np.nan)])
    x[:250, 1] = np.nan
    # When its ranges are fitted at the default quantiles
    ranges = fit_ranges(["a", "b", "empty"], x)
    # Then each range is the 0.1 % and 99.9 % quantile of the values present
    assert ranges.quantiles == DEFAULT_QUANTILES == (0.001, 0.999)
    lo, hi = np.quantile(x[:, 0], [0.001, 0.999])
    assert ranges.features["a"] == FeatureRange(lo, hi, 0.0)
    present = x[250:, 1]
    assert ranges.features["b"].lo == np.quantile(present, 0.001)
    assert ranges.features["b"].missing_share == 0.05
    assert ranges.features["empty"] == FeatureRange(None, None, 1.0)
    assert not ranges.estimated


def test_the_quantiles_are_a_setting() -> None:
    x = np.arange(1000, dtype=float).reshape(-1, 1)
    assert fit_ranges(["x"], x, (0.0, 1.0)).features["x"].to_list() == [0.0, 999.0, 0.0]
    assert fit_ranges(["x"], x, (0.05, 0.95)).features["x"].to_list() == pytest.approx(
        [49.95, 949.05, 0.0]
    )
    assert parse_quantiles("0.01:0.99") == (0.01, 0.99)
    for bad in ("0.99:0.01", "0.5", "a:b", "-0.1:0.9", "0.1:1.5", "0.5:0.5"):
        with pytest.raises(RangesError, match=r"quantiles must satisfy|expected LO:HI"):
            parse_quantiles(bad)


def test_an_estimate_from_a_stored_cdf_is_never_narrower_than_the_quantiles() -> None:
    # Given baselines fitted before ranges existed (only their 101-point CDFs are stored)
    rng = np.random.default_rng(11)
    samples = [rng.normal(size=200), rng.standard_t(3, size=20_000), rng.exponential(size=5000)]
    for values in samples:
        hist = fit_histogram(values)
        exact = fit_ranges(["v"], values.reshape(-1, 1)).features["v"]
        # When their ranges are estimated
        guess = estimate({"v": hist}).features["v"]
        # Then the estimate holds the exact range, and its ends are stored points
        assert guess.lo is not None and exact.lo is not None
        assert guess.hi is not None and exact.hi is not None
        assert guess.lo <= exact.lo and guess.hi >= exact.hi
        assert guess.lo in hist.cdf_points and guess.hi in hist.cdf_points
    # A reference under 1000 rows: the 0.1 % quantile is below its second value: [min, max]
    small = rng.normal(size=300)
    guess = estimate({"v": fit_histogram(small)}).features["v"]
    assert (guess.lo, guess.hi) == (small.min(), small.max())
    assert estimate({"v": fit_histogram(small)}).estimated


def test_ranges_read_back_only_in_this_schema_and_shape() -> None:
    ranges = Ranges(
        (0.01, 0.99), {"a": FeatureRange(-1.5, 2.0, 0.0), "b": FeatureRange(None, None, 1.0)}
    )
    assert Ranges.from_json(ranges.to_json()) == ranges
    raw = json.loads(ranges.to_json())
    assert raw == {
        "schema": 1,
        "quantiles": [0.01, 0.99],
        "estimated": False,
        "features": {"a": [-1.5, 2.0, 0.0], "b": [None, None, 1.0]},
    }
    cases = {
        "unsupported ranges schema 2": {**raw, "schema": 2},
        "feature 'a': lo and hi must be finite with lo <= hi": {
            **raw, "features": {"a": [3.0, 2.0, 0.0]}},
        "feature 'a': missing_share must be in 0..1": {**raw, "features": {"a": [1, 2, 1.5]}},
        "feature 'a': lo and hi are both numbers or both null": {
            **raw, "features": {"a": [None, 2, 0]}},
        "feature 'a': expected \\[lo, hi, missing_share\\]": {**raw, "features": {"a": [1, 2]}},
        "quantiles must be \\[lo, hi\\]": {**raw, "quantiles": 0.5},
    }  # fmt: skip
    for message, bad in cases.items():
        with pytest.raises(RangesError, match=message):
            Ranges.from_dict(bad)
    with pytest.raises(RangesError, match="ranges are not JSON"):
        Ranges.from_json(b'{"schema": 1, "quantiles": [0, 1], "features": {"a": [NaN, 1, 0]}}')


def test_a_baseline_carries_its_ranges_and_an_older_one_gets_an_estimate(models) -> None:
    rows = reference_rows(np.random.default_rng(0), 400, 6)
    baseline = classification_baseline(models.smh, rows, None)
    # Fitted now: the exact ranges of the reference, kept in baseline.json
    assert baseline.ranges == fit_ranges(models.smh.metadata.used_features, rows)
    again = Baseline.from_json(baseline.to_json())
    assert again.feature_ranges() == baseline.ranges
    # A baseline.json written before ranges existed has no "ranges": they are estimated
    old = json.loads(baseline.to_json())
    del old["ranges"]
    older = Baseline.from_json(json.dumps(old).encode())
    assert older.ranges is None
    estimated = older.feature_ranges()
    assert estimated is not None and estimated.estimated
    assert list(estimated.features) == models.smh.metadata.used_features
