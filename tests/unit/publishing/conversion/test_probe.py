"""Probe rows walk the trees' own split points: values at thresholds and their float64 and
float32 neighbours, the range around them, and missing values where the original accepts
them."""

from __future__ import annotations

import numpy as np

from tickerserve.publishing.conversion.probe import PROBE_ROWS, probe_rows

SPLITS = {0: [0.5, 1.5, 2.5], 2: [-1.0]}


def test_rows_have_the_requested_shape_and_are_reproducible():
    x = probe_rows(3, SPLITS)
    assert x.shape == (PROBE_ROWS, 3)
    np.testing.assert_array_equal(x, probe_rows(3, SPLITS))
    assert not np.array_equal(x, probe_rows(3, SPLITS, seed=1), equal_nan=True)


def test_half_the_rows_sit_on_thresholds_or_their_neighbours():
    x = probe_rows(3, SPLITS, missing=False)
    on_splits = x[PROBE_ROWS // 2 :, 0]
    neighbours = set()
    for t in SPLITS[0]:
        t32 = np.float32(t)
        neighbours |= {t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)}
        neighbours |= {
            float(np.nextafter(t32, np.float32(-np.inf))),
            float(np.nextafter(t32, np.float32(np.inf))),
        }
    assert set(on_splits.tolist()) <= neighbours
    assert {0.5, 1.5, 2.5} <= set(on_splits.tolist())
    assert np.nextafter(1.5, np.inf) in set(on_splits.tolist())


def test_the_other_half_spreads_over_the_split_range_and_a_bit_beyond():
    spread = probe_rows(3, SPLITS, missing=False)[2 : PROBE_ROWS // 2, 0]
    assert spread.min() >= 0.5 - 0.2 and spread.max() <= 2.5 + 0.2
    assert spread.min() < 0.5 and spread.max() > 2.5


def test_missing_values_only_where_the_original_accepts_them():
    with_missing = probe_rows(3, SPLITS)
    assert np.isnan(with_missing[0]).all()
    assert 0.02 < float(np.isnan(with_missing[2:]).mean()) < 0.1
    assert not np.isnan(probe_rows(3, SPLITS, missing=False)).any()


def test_a_row_of_zeros_and_features_never_split_on_get_any_value():
    x = probe_rows(3, SPLITS, missing=False, rows=40)
    assert x[1].tolist() == [0.0, 0.0, 0.0]
    assert np.isfinite(x[:, 1]).all() and np.unique(x[:, 1]).size > 30
