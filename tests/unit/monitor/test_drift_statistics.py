"""Drift statistics, metrics and significance tests against independent computations.

Each expected figure is written here from its formula with numpy/scipy (and, where the
library has it, checked against scikit-learn or scipy.stats), never by calling the monitor.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from tickerserve.baselines.baseline import fit_histogram
from tickerserve.baselines.metrics import ClassificationTally, RegressionTally, drift_pct
from tickerserve.baselines.moments import Moments
from tickerserve.monitor.config import Threshold
from tickerserve.monitor.drift_statistics import PSI_EPSILON, linf_at_points, psi
from tickerserve.monitor.significance import (
    diebold_mariano_hln,
    mcnemar_exact,
    two_proportion_z,
    welch_t,
)


def moments(values: np.ndarray, pieces: int = 3) -> Moments:
    m = Moments()
    for part in np.array_split(values, pieces):
        m.add(part)
    return m


# -- PSI and L-infinity --------------------------------------------------------------------
def psi_by_hand(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI from its definition: decile edges of the reference, left-closed bins, a missing
    bin, proportions floored at the stated epsilon, sum((a - e) ln(a / e))."""
    ref_present = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(ref_present, np.arange(1, bins) / bins, method="inverted_cdf"))
    full = np.concatenate(([-np.inf], edges, [np.inf]))

    def shares(x: np.ndarray) -> np.ndarray:
        present = x[~np.isnan(x)]
        counts = [np.sum((present >= lo) & (present < hi)) for lo, hi in itertools.pairwise(full)]
        return np.array([*counts, np.isnan(x).sum()], dtype=float) / x.size

    e = np.maximum(shares(reference), PSI_EPSILON)
    a = np.maximum(shares(current), PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_psi_matches_its_definition(shift: float) -> None:
    # Given a reference and a current sample (shifted by 0, 0.3 or 1 sd), both with gaps
    rng = np.random.default_rng(7)
    reference = rng.normal(size=5000)
    reference[rng.random(5000) < 0.03] = np.nan
    current = rng.normal(loc=shift, size=3000)
    current[rng.random(3000) < 0.06] = np.nan
    # When the monitor computes PSI from the stored histogram and the current counts
    hist = fit_histogram(reference)
    index = np.searchsorted(hist.edges, current, side="right")
    index[np.isnan(current)] = hist.n_bins
    counts = np.bincount(index, minlength=hist.n_bins + 1)
    ours = psi(hist.expected(), counts / counts.sum())
    # Then it equals the hand computation
    assert ours == pytest.approx(psi_by_hand(reference, current), rel=1e-12, abs=1e-12)


def test_psi_flags_shifted_features_and_not_unshifted_ones() -> None:
    rng = np.random.default_rng(3)
    hist = fit_histogram(rng.normal(size=4000))
    threshold = Threshold(0.1, 0.25)

    def level(sample: np.ndarray) -> str | None:
        counts = np.bincount(
            np.searchsorted(hist.edges, sample, side="right"), minlength=hist.n_bins
        )
        return threshold.level(psi(hist.expected(), np.append(counts, 0) / sample.size))

    assert level(rng.normal(size=2000)) == "ok"
    assert level(rng.normal(loc=0.45, size=2000)) == "watch"
    assert level(rng.normal(loc=1.0, size=2000)) == "drift"
    assert level(rng.normal(scale=2.5, size=2000)) == "drift"


def test_an_empty_bin_gives_a_large_finite_psi() -> None:
    expected = np.array([0.5, 0.5, 0.0])
    actual = np.array([0.0, 0.5, 0.5])
    by_hand = (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5) + (0.5 - PSI_EPSILON) * math.log(
        0.5 / PSI_EPSILON
    )
    assert psi(expected, actual) == pytest.approx(by_hand)
    assert math.isfinite(psi(expected, actual))


def test_linf_is_the_largest_cdf_gap_at_the_stored_points() -> None:
    rng = np.random.default_rng(11)
    reference = rng.normal(size=3000)
    current = rng.normal(loc=0.4, scale=1.2, size=1500)
    hist = fit_histogram(reference)
    points = np.asarray(hist.cdf_points)
    # the stored CDF is the reference's empirical CDF at its own percentiles
    assert points == pytest.approx(np.unique(np.quantile(reference, np.linspace(0, 1, 101))))
    assert hist.cdf == pytest.approx([np.mean(reference <= p) for p in points])
    # the monitor counts values at or below each point through searchsorted positions
    pos = np.searchsorted(points, current, side="left")
    at_or_below = np.cumsum(np.bincount(pos, minlength=points.size + 1))[:-1]
    ours = linf_at_points(np.asarray(hist.cdf), at_or_below, current.size)
    by_hand = max(abs(np.mean(reference <= p) - np.mean(current <= p)) for p in points)
    assert ours == pytest.approx(by_hand, abs=1e-12)
    # and at 101 points it is close to the two-sample Kolmogorov-Smirnov statistic
    assert ours == pytest.approx(stats.ks_2samp(reference, current).statistic, abs=0.02)


def test_histogram_edges_and_proportions_follow_the_quantiles() -> None:
    rng = np.random.default_rng(5)
    values = rng.exponential(size=1000)
    values[:50] = np.nan
    hist = fit_histogram(values, bins=10)
    present = values[~np.isnan(values)]
    deciles = np.quantile(present, np.arange(1, 10) / 10, method="inverted_cdf")
    assert hist.edges == pytest.approx(deciles)
    assert hist.missing_share == pytest.approx(0.05)
    assert sum(hist.proportions) == pytest.approx(1.0)
    assert hist.proportions == pytest.approx([0.1] * 10, abs=0.002)
    # a discrete feature keeps only distinct edges: fewer bins, no empty duplicates
    discrete = fit_histogram(np.array([0.0] * 700 + [1.0] * 300))
    assert discrete.edges == [0.0, 1.0]
    assert discrete.proportions == pytest.approx([0.0, 0.7, 0.3])  # below 0, [0, 1), [1, ...)


def test_thresholds_are_small_validated_objects() -> None:
    t = Threshold(0.1, 0.25)
    assert [t.level(v) for v in (0.0, 0.1, 0.2, 0.25, 3.0, None)] == [
        "ok", "watch", "watch", "drift", "drift", None,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="watch"):
        Threshold(0.3, 0.2)


# -- metrics ---------------------------------------------------------------------------------
def test_classification_metrics_match_their_formulas_and_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    n, k = 700, 4
    proba = rng.dirichlet(np.ones(k), size=n)
    truth = rng.integers(0, k, size=n)
    truth[:20] = 3  # class 3 is rare in predictions; labels outside are tested below
    pred = proba.argmax(axis=1)
    tally = ClassificationTally(k)
    for part in np.array_split(np.arange(n), 4):  # streamed in pieces
        tally.add(truth[part], pred[part], proba[part, truth[part]])
    ours = tally.metrics()
    f1 = []
    for c in range(k):
        tp = np.sum((pred == c) & (truth == c))
        fp = np.sum((pred == c) & (truth != c))
        fn = np.sum((pred != c) & (truth == c))
        f1.append(2 * tp / (2 * tp + fp + fn))
    assert ours["accuracy"] == pytest.approx(np.mean(pred == truth))
    assert ours["macro_f1"] == pytest.approx(np.mean(f1))
    assert ours["log_loss"] == pytest.approx(-np.mean(np.log(proba[np.arange(n), truth])))
    assert ours["macro_f1"] == pytest.approx(skm.f1_score(truth, pred, average="macro"))
    assert ours["log_loss"] == pytest.approx(skm.log_loss(truth, proba, labels=range(k)))


def test_a_label_the_model_cannot_output_counts_as_a_class_with_f1_zero() -> None:
    truth = np.array(["A", "B", "A", "Z", "Y", "B"])
    pred = np.array(["A", "B", "B", "A", "B", "B"])
    tally = ClassificationTally(2)
    index = {"A": 0, "B": 1}
    tally.add(np.array([index.get(t, 2) for t in truth]), np.array([index[p] for p in pred]))
    tally.other_labels.update({"Z", "Y"})
    assert tally.metrics()["macro_f1"] == pytest.approx(skm.f1_score(truth, pred, average="macro"))
    assert tally.metrics()["accuracy"] == pytest.approx(3 / 6)


def test_regression_metrics_match_their_formulas_and_scikit_learn() -> None:
    rng = np.random.default_rng(4)
    truth = 1000.0 + rng.normal(scale=0.01, size=900)  # far from zero: naive sums lose digits
    pred = truth + rng.normal(scale=0.004, size=900)
    tally = RegressionTally()
    for part in np.array_split(np.arange(900), 7):
        tally.add(truth[part], pred[part])
    ours = tally.metrics()
    assert ours["rmse"] == pytest.approx(np.sqrt(np.mean((pred - truth) ** 2)), rel=1e-9)
    assert ours["mae"] == pytest.approx(np.mean(np.abs(pred - truth)), rel=1e-9)
    r2 = 1 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2)
    assert ours["r2"] == pytest.approx(r2, rel=1e-7)
    assert ours["r2"] == pytest.approx(skm.r2_score(truth, pred), rel=1e-7)


def test_drift_pct_is_the_relative_degradation_of_the_primary_metric() -> None:
    assert drift_pct("rmse", 0.010, 0.0112) == pytest.approx(12.0)  # RMSE up 12%: worse
    assert drift_pct("accuracy", 0.60, 0.54) == pytest.approx(10.0)  # accuracy down 10%
    assert drift_pct("accuracy", 0.60, 0.66) == pytest.approx(-10.0)  # better than baseline
    assert drift_pct("rmse", None, 0.01) is None


# -- significance -----------------------------------------------------------------------------
@pytest.mark.parametrize(("b", "c"), [(0, 0), (3, 12), (40, 25), (17, 17), (1, 0)])
def test_mcnemar_exact_is_a_two_sided_binomial_test_on_discordant_pairs(b: int, c: int) -> None:
    result = mcnemar_exact(b, c)
    expected = 1.0 if b + c == 0 else stats.binomtest(c, b + c, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9)
    assert result.favours == (None if b == c else "challenger" if c > b else "champion")


def dm_hln_by_hand(e1: np.ndarray, e2: np.ndarray) -> tuple[float, float]:
    d = e1**2 - e2**2
    t = d.size
    gamma0 = np.mean((d - d.mean()) ** 2)
    dm = d.mean() / np.sqrt(gamma0 / t)
    hln = dm * np.sqrt((t + 1 - 2 + 0) / t)
    return float(hln), float(2 * stats.t.sf(abs(hln), df=t - 1))


def test_diebold_mariano_hln_reproduces_a_published_worked_example() -> None:
    # The worked example of the `dieboldmariano` package's README (after Harvey, Leybourne
    # and Newbold 1997; R's forecast::dm.test gives the same): actual 10..50, forecasts F and
    # G, squared-error loss, h = 1: statistic -2.2229922805746782, one-sided p 0.0451556586.
    actual = np.array([10, 20, 30, 40, 50], dtype=float)
    f = np.array([11, 21, 29, 42, 53], dtype=float)
    g = np.array([13, 26, 24, 40, 59], dtype=float)
    result = diebold_mariano_hln(moments((f - actual) ** 2 - (g - actual) ** 2, 2))
    assert result.statistic == pytest.approx(-2.2229922805746782, rel=1e-9)
    assert result.p_value / 2 == pytest.approx(0.04515565862099125, rel=1e-6)
    assert result.favours == "champion"  # F (the first, the champion) has the smaller errors
    # and the package's own test case: P1 vs P2 against zeros, two-sided p 0.05513
    zeros = np.zeros(6)
    p1, p2 = np.arange(6.0), np.array([0, 2, 3, 3, 5, 6], dtype=float)
    second = diebold_mariano_hln(moments((p1 - zeros) ** 2 - (p2 - zeros) ** 2, 2))
    assert second.statistic == pytest.approx(-2.4905, abs=1e-4)
    assert second.p_value == pytest.approx(0.05513, abs=1e-5)


def test_diebold_mariano_hln_matches_the_formula_on_generated_errors() -> None:
    rng = np.random.default_rng(9)
    e1 = rng.normal(scale=1.0, size=400)
    e2 = rng.normal(scale=0.9, size=400)
    result = diebold_mariano_hln(moments(e1**2 - e2**2, 5))
    statistic, p = dm_hln_by_hand(e1, e2)
    assert result.statistic == pytest.approx(statistic, rel=1e-9)
    assert result.p_value == pytest.approx(p, rel=1e-9)


def test_two_proportion_z_equals_the_chi_square_test_of_the_2x2_table() -> None:
    x1, n1, x2, n2 = 510, 900, 140, 210
    result = two_proportion_z(x1, n1, x2, n2)
    pooled = (x1 + x2) / (n1 + n2)
    z = (x2 / n2 - x1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert result.statistic == pytest.approx(z)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)))
    table = np.array([[x1, n1 - x1], [x2, n2 - x2]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert result.statistic is not None and result.statistic**2 == pytest.approx(chi2)
    assert result.p_value == pytest.approx(p)
    assert result.favours == "challenger"


def test_welch_t_on_squared_errors_matches_scipy() -> None:
    rng = np.random.default_rng(12)
    sq_a = rng.normal(scale=1.2, size=500) ** 2
    sq_b = rng.normal(scale=1.0, size=140) ** 2
    result = welch_t(moments(sq_a), moments(sq_b, 2))
    expected = stats.ttest_ind(sq_a, sq_b, equal_var=False)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.favours == ("challenger" if expected.statistic > 0 else "champion")
