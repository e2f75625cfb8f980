"""The monitor's distribution functions against scipy.special (ndtr, stdtr, bdtr) over wide
argument ranges, and against exact values (integer arithmetic, mpmath at 60 digits) where
scipy itself drifts: its bdtr loses up to 2e-9 relative at a million trials."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import special

from tickerserve.monitor.distributions import binomial_cdf, normal_cdf, student_t_cdf

RTOL = 1e-12
# Values below this are subnormal or nearly so: relative accuracy means nothing there.
SMALLEST = 1e-290


def close(mine: float, want: float, rtol: float = RTOL) -> bool:
    return mine == want or abs(mine - want) <= rtol * abs(want)


# -- normal ------------------------------------------------------------------------------------
@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=-37.5, max_value=40.0))
def test_normal_cdf_is_scipys_ndtr(x):
    assert close(normal_cdf(x), float(special.ndtr(x)), 1e-13)


def test_normal_cdf_edges_and_symmetry():
    assert normal_cdf(0.0) == 0.5
    assert normal_cdf(-math.inf) == 0.0 and normal_cdf(math.inf) == 1.0
    assert math.isnan(normal_cdf(math.nan))
    assert normal_cdf(-1.959963984540054) == pytest.approx(0.025, rel=1e-15)
    for x in (0.1, 1.0, 3.0, 8.0):
        assert normal_cdf(x) + normal_cdf(-x) == pytest.approx(1.0, rel=1e-15)


# -- Student t ---------------------------------------------------------------------------------
DEGREES = st.floats(min_value=-1.3, max_value=9.0).map(lambda e: 10.0**e)  # 0.05 .. 1e9
T_VALUES = st.floats(min_value=-1e4, max_value=1e4)


def mp_student_t_cdf(t: float, df: float) -> float:
    mpmath.mp.dps = 60
    x = mpmath.mpf(df) / (mpmath.mpf(df) + mpmath.mpf(t) ** 2)
    lower = 0.5 * mpmath.betainc(mpmath.mpf(df) / 2, 0.5, 0, x, regularized=True)
    return float(lower if t < 0 else 1 - lower)


@settings(max_examples=1500, deadline=None)
@given(T_VALUES, DEGREES)
def test_student_t_cdf_is_scipys_stdtr(t, df):
    want = float(special.stdtr(df, t))
    assume(want >= SMALLEST)
    mine = student_t_cdf(t, df)
    # scipy's stdtr at exactly one degree of freedom is off by up to 3e-9 for |t| < 1e-4:
    # there the 60-digit value decides.
    assert close(mine, want) or close(mine, mp_student_t_cdf(t, df))


@settings(max_examples=500, deadline=None)
@given(st.floats(min_value=-8.0, max_value=8.0), st.integers(min_value=30, max_value=10**8))
def test_student_t_cdf_with_many_degrees_of_freedom_near_the_body(t, df):
    # Welch and Diebold-Mariano degrees of freedom are the row counts: this is the common case
    assert close(student_t_cdf(t, float(df)), float(special.stdtr(df, t)))


@pytest.mark.parametrize(
    ("t", "df"),
    [(-1.9, 1e6), (-1.9, 8.2e7), (-2.5, 1e8), (-5.0, 1e7), (-30.0, 1e5), (-0.3, 7.5),
     (-40.0, 200.2), (-1e3, 3.3), (-1e10, 0.5), (-0.01, 1e5), (-1e200, 1.0)],
)  # fmt: skip
def test_student_t_cdf_against_60_digit_values(t, df):
    assert close(student_t_cdf(t, df), mp_student_t_cdf(t, df), 2e-13)


def test_scipy_itself_is_off_near_zero_at_one_degree_of_freedom():
    # The Cauchy distribution: P[T <= t] = 1/2 + atan(t) / pi
    want = 0.5 + math.atan(1e-6) / math.pi
    assert close(student_t_cdf(1e-6, 1.0), want, 1e-15)
    assert not close(float(special.stdtr(1.0, 1e-6)), want, 1e-12)


def test_student_t_cdf_closed_forms_and_edges():
    for t in (-50.0, -3.0, -0.5, 0.5, 2.0):
        assert student_t_cdf(t, 1.0) == pytest.approx(0.5 + math.atan(t) / math.pi, rel=1e-14)
        assert student_t_cdf(t, 2.0) == pytest.approx(
            0.5 + t / (2.0 * math.sqrt(2.0 + t * t)), rel=1e-14
        )
    assert student_t_cdf(0.0, 5.0) == 0.5
    assert student_t_cdf(1e-300, 5.0) == 0.5
    assert student_t_cdf(-math.inf, 3.0) == 0.0 and student_t_cdf(math.inf, 3.0) == 1.0
    assert student_t_cdf(-2.0, math.inf) == normal_cdf(-2.0)
    assert math.isnan(student_t_cdf(1.0, 0.0)) and math.isnan(student_t_cdf(math.nan, 3.0))


# -- binomial ----------------------------------------------------------------------------------
def exact_half(k: int, n: int) -> float:
    """P[Bin(n, 1/2) <= k] in integers, rounded once."""
    total = term = 1
    for i in range(k):  # C(n, i + 1) from C(n, i)
        term = term * (n - i) // (i + 1)
        total += term
    return float(Fraction(total, 2**n))


def mp_binomial_cdf(k: int, n: int, p: float) -> float:
    """The tail nearer k summed term by term at 60 digits, each term from the previous."""
    mpmath.mp.dps = 60
    pp = mpmath.mpf(p)
    q = 1 - pp
    below_mean = k < n * p
    i = k if below_mean else k + 1
    term = mpmath.binomial(n, i) * pp**i * q ** (n - i)
    total = term
    while (i > 0) if below_mean else (i < n):
        if below_mean:
            term = term * i / (n - i + 1) * q / pp
            i -= 1
        else:
            term = term * (n - i) / (i + 1) * pp / q
            i += 1
        total += term
        if term < total * mpmath.mpf(10) ** -40:
            break
    return float(total if below_mean else 1 - total)


@st.composite
def trials(draw, max_n: int, half: bool = False):
    n = draw(st.integers(min_value=1, max_value=max_n))
    k = draw(st.integers(min_value=0, max_value=n))
    p = 0.5 if half else draw(st.floats(min_value=1e-6, max_value=1 - 1e-6))
    return k, n, p


@settings(max_examples=1000, deadline=None)
@given(trials(max_n=300))
def test_binomial_cdf_is_scipys_bdtr(case):
    k, n, p = case
    want = float(special.bdtr(k, n, p))
    assume(want >= SMALLEST)
    mine = binomial_cdf(k, n, p)
    # scipy's own error reaches 1e-12 from a few hundred trials: the 60-digit value decides
    assert close(mine, want) or close(mine, mp_binomial_cdf(k, n, p))


@settings(max_examples=300, deadline=None)
@given(trials(max_n=6000, half=True))
def test_binomial_cdf_at_one_half_is_exact_as_mcnemar_uses_it(case):
    k, n, _ = case
    want = exact_half(k, n)
    assume(want >= SMALLEST)
    assert close(binomial_cdf(k, n, 0.5), want)


@settings(max_examples=150, deadline=None)
@given(
    st.floats(min_value=3.0, max_value=6.3).map(lambda e: int(10.0**e)),
    st.floats(min_value=-7.0, max_value=7.0),
    st.sampled_from([0.5, 0.02, 0.3, 0.77, 0.999]),
)
def test_binomial_cdf_with_up_to_two_million_trials_where_scipy_drifts(n, z, p):
    # k within seven standard deviations of the mean, where the answer is not subnormal
    k = min(n, max(0, round(n * p + z * math.sqrt(n * p * (1 - p)))))
    want = mp_binomial_cdf(k, n, p)
    assume(want >= SMALLEST)
    assert close(binomial_cdf(k, n, p), want)


def test_scipy_itself_is_further_off_than_we_are_at_many_trials():
    k, n = 341061, 701030
    want = mp_binomial_cdf(k, n, 0.5)
    assert close(binomial_cdf(k, n, 0.5), want, 1e-13)
    assert not close(float(special.bdtr(k, n, 0.5)), want, 1e-10)


def test_binomial_cdf_edges():
    assert binomial_cdf(-1, 10, 0.5) == 0.0
    assert binomial_cdf(10, 10, 0.5) == binomial_cdf(12, 10, 0.5) == 1.0
    assert binomial_cdf(0, 0, 0.5) == 1.0
    assert binomial_cdf(3, 10, 0.0) == 1.0 and binomial_cdf(3, 10, 1.0) == 0.0
    assert binomial_cdf(0, 10, 0.5) == 2.0**-10
    assert binomial_cdf(9, 10, 0.5) == 1.0 - 2.0**-10
    assert math.isnan(binomial_cdf(3, 10, 1.5)) and math.isnan(binomial_cdf(3, 10, math.nan))
