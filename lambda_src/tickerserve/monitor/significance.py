"""Is the challenger's difference real? Tests on champion vs challenger outcomes.

Paired (shadow: both scored the same rows):
- classifiers: McNemar's exact test on the discordant pairs (two-sided binomial, p = 1/2);
- regressors: the Diebold-Mariano test on squared errors with the Harvey-Leybourne-Newbold
  small-sample correction (horizon h = 1: one forecast per row, so no autocovariance terms),
  referred to Student's t with T - 1 degrees of freedom.
Unpaired (canary: each answered different rows):
- classifiers: the two-proportion z-test on accuracy (pooled variance);
- regressors: Welch's t-test on squared errors.

Every result is two-sided and says which side the data favour. The distribution functions
are ``distributions`` (plain ``math``; the function layer carries no scipy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tickerserve.baselines.moments import Moments
from tickerserve.monitor.distributions import binomial_cdf, normal_cdf, student_t_cdf

Side = Literal["champion", "challenger"]
MCNEMAR = "mcnemar_exact"
DIEBOLD_MARIANO = "diebold_mariano_hln"
TWO_PROPORTION = "two_proportion_z"
WELCH = "welch_t_squared_errors"


@dataclass(frozen=True)
class Significance:
    """A test's name, statistic and two-sided p-value, and the side it favours (None: even)."""

    name: str
    statistic: float | None
    p_value: float
    n: int
    favours: Side | None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "n": self.n,
            "favours": self.favours,
        }


def _side(champion_worse: float) -> Side | None:
    if champion_worse > 0:
        return "challenger"
    if champion_worse < 0:
        return "champion"
    return None


def mcnemar_exact(champion_only: int, challenger_only: int) -> Significance:
    """``champion_only``: rows only the champion got right (b); ``challenger_only``: rows
    only the challenger got right (c). p = min(1, 2 * P[Bin(b + c, 1/2) <= min(b, c)])."""
    b, c = int(champion_only), int(challenger_only)
    n = b + c
    p = 1.0 if n == 0 else min(1.0, 2.0 * binomial_cdf(min(b, c), n, 0.5))
    return Significance(MCNEMAR, float(c - b), p, n, _side(c - b))


def diebold_mariano_hln(differential: Moments, horizon: int = 1) -> Significance:
    """``differential``: moments of d_t = e_champion_t^2 - e_challenger_t^2 over T rows.

    DM = mean(d) / sqrt(gamma_0 / T) with gamma_0 the population variance of d;
    HLN: DM* = DM * sqrt((T + 1 - 2h + h(h - 1) / T) / T), p from t(T - 1).
    """
    if horizon != 1:
        raise ValueError("only one-step (h = 1) forecasts are compared")
    t_count = differential.n
    mean = differential.mean
    if t_count < 2:
        return Significance(DIEBOLD_MARIANO, None, 1.0, t_count, None)
    gamma0 = differential.variance(ddof=0)
    if gamma0 <= 0:  # every row differs by the same amount: no noise to test against
        return Significance(DIEBOLD_MARIANO, None, 1.0 if mean == 0 else 0.0, t_count, _side(mean))
    dm = mean / math.sqrt(gamma0 / t_count)
    h = horizon
    dm_star = dm * math.sqrt((t_count + 1 - 2 * h + h * (h - 1) / t_count) / t_count)
    p = 2.0 * student_t_cdf(-abs(dm_star), t_count - 1)
    return Significance(DIEBOLD_MARIANO, dm_star, min(1.0, p), t_count, _side(mean))


def two_proportion_z(
    champion_correct: int, champion_n: int, challenger_correct: int, challenger_n: int
) -> Significance:
    """z = (p2 - p1) / sqrt(p (1 - p) (1/n1 + 1/n2)) with the pooled p; p = 2 (1 - Phi(|z|))."""
    n1, n2 = int(champion_n), int(challenger_n)
    if n1 == 0 or n2 == 0:
        return Significance(TWO_PROPORTION, None, 1.0, n1 + n2, None)
    p1, p2 = champion_correct / n1, challenger_correct / n2
    pooled = (champion_correct + challenger_correct) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:  # both all right or all wrong
        return Significance(TWO_PROPORTION, None, 1.0, n1 + n2, None)
    z = (p2 - p1) / se
    return Significance(TWO_PROPORTION, z, 2.0 * normal_cdf(-abs(z)), n1 + n2, _side(z))


def welch_t(champion: Moments, challenger: Moments) -> Significance:
    """Welch's t-test on the two sides' squared errors (sample variances, Welch-Satterthwaite
    degrees of freedom); positive t means the champion's errors are larger."""
    n1, n2 = champion.n, challenger.n
    if n1 < 2 or n2 < 2:
        return Significance(WELCH, None, 1.0, n1 + n2, None)
    a, b = champion.variance(ddof=1) / n1, challenger.variance(ddof=1) / n2
    if a + b <= 0:
        diff = champion.mean - challenger.mean
        return Significance(WELCH, None, 1.0 if diff == 0 else 0.0, n1 + n2, _side(diff))
    t = (champion.mean - challenger.mean) / math.sqrt(a + b)
    df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    p = 2.0 * student_t_cdf(-abs(t), df)
    return Significance(WELCH, t, min(1.0, p), n1 + n2, _side(t))
