"""Streaming count, mean and variance: the same figures however the stream is cut, and exact
where the textbook one-pass formula loses every digit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tickerserve.baselines.moments import Moments


def streamed(values: np.ndarray, cuts: list[int]) -> Moments:
    moments = Moments()
    for batch in np.split(values, cuts):
        moments.add(batch)
    return moments


@pytest.mark.parametrize("cuts", [[], [1], [3, 4, 500], list(range(1, 999, 7))])
def test_any_cut_of_the_stream_gives_numpys_figures(cuts: list[int]):
    values = np.random.default_rng(0).normal(3.0, 2.0, 1000)
    moments = streamed(values, cuts)
    assert moments.n == 1000
    assert moments.mean == pytest.approx(float(np.mean(values)), rel=1e-12)
    assert moments.variance() == pytest.approx(float(np.var(values)), rel=1e-12)
    assert moments.variance(ddof=1) == pytest.approx(float(np.var(values, ddof=1)), rel=1e-12)
    assert moments.sum == pytest.approx(float(np.sum(values)), rel=1e-12)


def test_values_far_from_zero_keep_their_variance():
    # 1e9 + small noise: sum(x**2) - sum(x)**2 / n cancels to garbage in float64
    noise = np.random.default_rng(1).normal(0.0, 1.0, 10_000)
    moments = streamed(1e9 + noise, list(range(100, 10_000, 100)))
    assert moments.variance() == pytest.approx(float(np.var(noise)), rel=1e-6)
    naive = (np.sum((1e9 + noise) ** 2) - np.sum(1e9 + noise) ** 2 / noise.size) / noise.size
    assert abs(naive - np.var(noise)) > 0.1  # what the pairwise update avoids


def test_merging_two_tallies_equals_one_tally_of_both():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=300), rng.normal(5.0, 3.0, 700)
    left, right = Moments(), Moments()
    left.add(a)
    right.add(b)
    left.merge(right)
    both = np.concatenate([a, b])
    assert left.n == 1000
    assert left.to_list() == pytest.approx([1000, np.mean(both), np.var(both) * 1000], rel=1e-12)


def test_empty_batches_and_empty_tallies_change_nothing():
    moments = Moments()
    moments.add(np.array([]))
    assert moments.to_list() == [0, 0.0, 0.0]
    moments.add(np.array([2.0, 4.0]))
    moments.merge(Moments())
    moments.add(np.array([]))
    assert moments.to_list() == [2, 3.0, 2.0]


def test_variance_of_too_few_values_is_nan():
    assert math.isnan(Moments().variance())
    one = Moments()
    one.add(np.array([5.0]))
    assert one.variance() == 0.0
    assert math.isnan(one.variance(ddof=1))
