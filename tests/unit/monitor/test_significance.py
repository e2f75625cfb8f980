"""The tests that say whether champion and challenger really differ: each agrees with the
textbook computation (scipy.stats, or the formula itself), is two-sided, and says which side
the data favour; too little data is "no difference", never an error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tickerserve.baselines.moments import Moments
from tickerserve.monitor.significance import (
    DIEBOLD_MARIANO,
    MCNEMAR,
    TWO_PROPORTION,
    WELCH,
    Significance,
    diebold_mariano_hln,
    mcnemar_exact,
    two_proportion_z,
    welch_t,
)


def moments(values: np.ndarray) -> Moments:
    out = Moments()
    out.add(values)
    return out


@pytest.mark.parametrize(("b", "c"), [(10, 25), (25, 10), (3, 4), (0, 9), (40, 40)])
def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs(b: int, c: int):
    result = mcnemar_exact(b, c)
    expected = stats.binomtest(min(b, c), b + c, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9)
    assert (result.name, result.n, result.statistic) == (MCNEMAR, b + c, float(c - b))
    assert result.favours == ("challenger" if c > b else "champion" if b > c else None)


def test_mcnemar_without_discordant_pairs_is_no_difference():
    assert mcnemar_exact(0, 0) == Significance(MCNEMAR, 0.0, 1.0, 0, None)


def test_welch_matches_scipy_on_squared_errors():
    rng = np.random.default_rng(0)
    champion = rng.normal(0.0, 0.02, 300) ** 2
    challenger = rng.normal(0.0, 0.015, 250) ** 2
    result = welch_t(moments(champion), moments(challenger))
    expected = stats.ttest_ind(champion, challenger, equal_var=False)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert (result.name, result.n, result.favours) == (WELCH, 550, "challenger")


def test_welch_with_too_few_rows_or_no_noise():
    assert welch_t(moments(np.ones(1)), moments(np.ones(5))).p_value == 1.0
    constant = welch_t(moments(np.full(4, 2.0)), moments(np.full(4, 1.0)))
    assert (constant.statistic, constant.p_value, constant.favours) == (None, 0.0, "challenger")
    same = welch_t(moments(np.full(4, 1.0)), moments(np.full(4, 1.0)))
    assert (same.p_value, same.favours) == (1.0, None)


def test_two_proportion_z_is_the_pooled_test():
    result = two_proportion_z(120, 200, 150, 210)
    p1, p2, pooled = 120 / 200, 150 / 210, 270 / 410
    z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (1 / 200 + 1 / 210))
    assert result.statistic == pytest.approx(z)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert (result.name, result.n, result.favours) == (TWO_PROPORTION, 410, "challenger")
    assert two_proportion_z(150, 210, 120, 200).favours == "champion"


def test_two_proportion_z_with_an_empty_side_or_all_alike_is_no_difference():
    assert two_proportion_z(0, 0, 5, 10).p_value == 1.0
    assert two_proportion_z(10, 10, 12, 12) == Significance(TWO_PROPORTION, None, 1.0, 22, None)


def test_diebold_mariano_with_the_small_sample_correction():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=60)
    champion = truth + rng.normal(0.0, 1.0, 60)
    challenger = truth + rng.normal(0.0, 0.7, 60)
    d = (champion - truth) ** 2 - (challenger - truth) ** 2
    result = diebold_mariano_hln(moments(d))
    t = len(d)
    dm = d.mean() / math.sqrt(d.var() / t)
    dm_star = dm * math.sqrt((t + 1 - 2) / t)
    assert result.statistic == pytest.approx(dm_star, rel=1e-9)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(dm_star), t - 1), rel=1e-9)
    assert (result.name, result.n) == (DIEBOLD_MARIANO, 60)
    assert result.favours == ("challenger" if d.mean() > 0 else "champion")


def test_diebold_mariano_edge_cases():
    assert diebold_mariano_hln(moments(np.ones(1))).p_value == 1.0
    constant = diebold_mariano_hln(moments(np.full(5, 0.3)))
    assert (constant.statistic, constant.p_value, constant.favours) == (None, 0.0, "challenger")
    zero = diebold_mariano_hln(moments(np.zeros(5)))
    assert (zero.p_value, zero.favours) == (1.0, None)
    with pytest.raises(ValueError, match=r"^only one-step \(h = 1\) forecasts are compared$"):
        diebold_mariano_hln(moments(np.ones(5)), horizon=2)


def test_a_result_reads_as_a_dict():
    assert mcnemar_exact(1, 3).to_dict() == {
        "name": "mcnemar_exact", "statistic": 2.0, "p_value": 0.625, "n": 4,
        "favours": "challenger",
    }  # fmt: skip
