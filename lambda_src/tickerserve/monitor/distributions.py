"""The three distribution functions the significance tests need, in plain Python (``math``).

- ``normal_cdf``: Phi(x), through ``math.erf`` / ``math.erfc`` as Cephes' ``ndtr`` computes it;
- ``student_t_cdf``: Student's t CDF for any real degrees of freedom (Welch's are fractional),
  through the regularized incomplete beta function;
- ``binomial_cdf``: P[Bin(n, p) <= k], the tail summed outwards from one binomial probability
  computed by Loader's saddle-point method (about 1e-13 relative even at millions of trials,
  where a difference of log-gammas would lose ten digits).

They replace ``scipy.special.ndtr``, ``stdtr`` and ``bdtr``: within 1e-12 relative of scipy
over wide ranges, and of 60-digit values where scipy itself drifts (its ``bdtr`` by up to 2e-9
at a million trials; tests/unit/monitor/test_distributions.py). So the function layer carries
no scipy (104 MiB unzipped).
"""

from __future__ import annotations

import math

SQRT1_2 = math.sqrt(0.5)
_LN_2PI = math.log(2.0 * math.pi)
_LN_SQRT_2PI = 0.5 * _LN_2PI
_EPS = 2.0**-53  # half a unit in the last place of 1.0
_TINY = 1e-300  # keeps Lentz's continued fraction away from a division by zero
# Stirling's series for ln Gamma(z) - ((z - 1/2) ln z - z + ln sqrt(2 pi)): B_2k / (2k (2k - 1)),
# enough terms for double precision from z >= 10 (the next term is below 1e-16 there).
_STIRLING = (
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
    -3617.0 / 122400.0,
)
_STIRLING_FROM = 10.0
_BGRAT_TERMS = 30


def normal_cdf(x: float) -> float:
    """P[Z <= x] for a standard normal Z (``scipy.special.ndtr``)."""
    if math.isnan(x):
        return math.nan
    z = x * SQRT1_2
    if abs(z) < SQRT1_2:
        return 0.5 + 0.5 * math.erf(z)
    tail = 0.5 * math.erfc(abs(z))
    return 1.0 - tail if z > 0 else tail


def student_t_cdf(t: float, df: float) -> float:
    """P[T <= t] for Student's t with ``df`` > 0 degrees of freedom (``scipy.special.stdtr``)."""
    if math.isnan(t) or math.isnan(df) or df <= 0:
        return math.nan
    if math.isinf(df):
        return normal_cdf(t)
    if math.isinf(t):
        return 0.0 if t < 0 else 1.0
    if t == 0:
        return 0.5
    # P[T <= -|t|] = I_x(df/2, 1/2) / 2 with x = df / (df + t^2). Both x and 1 - x and their
    # logarithms come from one ratio r, so neither is a difference of nearly equal numbers
    # and t^2 never overflows.
    a, b = 0.5 * df, 0.5
    if abs(t) < math.sqrt(df):
        r = (t / df) * t  # t^2 / df
        if r == 0.0:  # |t| so small that P - 1/2 (about 0.4 t / sqrt(df)) is below 1/2's ulp
            return 0.5
        x, y = 1.0 / (1.0 + r), r / (1.0 + r)
        log_x, log_y = -math.log1p(r), math.log(r) - math.log1p(r)
    else:
        r = (df / abs(t)) / abs(t)  # df / t^2
        x, y = r / (1.0 + r), 1.0 / (1.0 + r)
        log_r = math.log(r) if r > 0.0 else math.log(df) - 2.0 * math.log(abs(t))
        log_x, log_y = log_r - math.log1p(r), -math.log1p(r)
    if a > _STIRLING_FROM and y < 0.29 and (y >= 0.1 or a * y > 0.49):
        # Many degrees of freedom and |t| past about 1: the continued fraction would sum
        # thousands of terms near x = 1 and lose digits; the expansion for large a does not.
        lower = 0.5 * _beta_large_a_half_b(a, x, y)
    else:
        log_front = a * log_x + b * log_y - _log_beta(a, b)
        if x < (a + 1.0) / (a + b + 2.0):
            lower = 0.5 * math.exp(log_front) * _beta_fraction(a, b, x) / a
        else:  # I_x(a, b) = 1 - I_y(b, a), whose continued fraction converges here
            lower = 0.5 * (1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b)
    return lower if t < 0 else 1.0 - lower


# Up to here a fair coin's CDF is summed exactly in integers (about 1 ms at the limit).
_EXACT_HALF_TRIALS = 5_000


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P[Bin(n, p) <= k] (``scipy.special.bdtr``): ``k`` successes or fewer in ``n`` trials."""
    if n < 0 or math.isnan(p) or not 0.0 <= p <= 1.0:
        return math.nan
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    q = 1.0 - p
    if p == 0.0:
        return 1.0
    if q == 0.0:
        return 0.0
    if p == 0.5 and n <= _EXACT_HALF_TRIALS:
        # McNemar's case: the count of outcomes as an integer over 2**n, correctly rounded
        # once (0.625 prints as 0.625, where the tail sum gives 0.6249999999999994).
        term = total = 1
        for i in range(1, k + 1):
            term = term * (n - i + 1) // i  # comb(n, i), exactly
            total += term
        return total / 2**n
    # The tail on k's side of the mean, summed from P[X = k] (or P[X = k + 1]) outwards: each
    # term is the previous times a ratio below 1, so the sum is dominated by its first terms
    # and carries their accuracy (a continued fraction multiplies thousands of factors and
    # drifts by 1e-12 at a million trials).
    if k < n * p:
        return _binomial_tail(k, n, p, q, -1)
    return 1.0 - _binomial_tail(k + 1, n, p, q, +1)


def _binomial_tail(start: int, n: int, p: float, q: float, step: int) -> float:
    """P[X = start] + P[X = start + step] + ... while the terms matter. ``start`` is on the
    tail's side of the mean, so every ratio between terms is below 1 and falls outwards."""
    term = _binomial_pmf(start, n, p, q)
    total, i = term, start
    while (i > 0) if step < 0 else (i < n):
        ratio = (i * q) / ((n - i + 1) * p) if step < 0 else ((n - i) * p) / ((i + 1) * q)
        term *= ratio
        i += step
        total += term
        # the ratios only fall from here: what is left is below term * ratio / (1 - ratio)
        if term * ratio <= total * (1.0 - ratio) * _EPS * 0.5:
            break
    return total


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) = x^a (1-x)^b / (a B(a, b)) * fraction, by the
    modified Lentz method; it converges fast for x < (a + 1) / (a + b + 2)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    # about sqrt(max(a, b)) terms near the mean, a handful in the tails
    limit = 1000 + 20 * int(math.sqrt(max(a, b)))
    for m in range(1, limit):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            step = c * d
            h *= step
        if abs(step - 1.0) <= _EPS:
            return h
    raise ArithmeticError(f"incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def _log_beta(a: float, b: float) -> float:
    """ln B(a, b); for a large ``a`` without subtracting two large log-gammas."""
    small, large = min(a, b), max(a, b)
    if large < _STIRLING_FROM:
        return math.lgamma(small) + math.lgamma(large) - math.lgamma(small + large)
    ratio = _log_gamma_ratio(large, small)
    if small < _STIRLING_FROM:
        return math.lgamma(small) + ratio
    return _LN_SQRT_2PI + (small - 0.5) * math.log(small) - small + _stirling_tail(small) + ratio


def _log_gamma_ratio(a: float, b: float) -> float:
    """ln Gamma(a) - ln Gamma(a + b) for a >= 10, from Stirling's formula with its large terms
    cancelled analytically: -(a - 1/2) ln(1 + b/a) - b ln(a + b) + b + tail(a) - tail(a + b)."""
    total = a + b
    head = -(a - 0.5) * math.log1p(b / a) + b - b * math.log(total)
    return head + _stirling_tail(a) - _stirling_tail(total)


def _beta_large_a_half_b(a: float, x: float, y: float) -> float:
    """I_x(a, 1/2) for a > 10 and y = 1 - x < 0.29: DiDonato and Morris's asymptotic expansion
    for a large a and b <= 1 (ACM TOMS 708, ``bgrat``; Trans. Math. Softw. 18, 1992, sec. 9)."""
    b = 0.5
    nu = a + (b - 1.0) * 0.5
    log_x = math.log(x) if y > 0.375 else math.log1p(-y)
    z = -nu * log_x
    # r = z^b e^-z / Gamma(b); u = r Gamma(a + b) / (Gamma(a) nu^b) factored out of the series
    log_r = b * math.log(z) - z - math.lgamma(b)
    log_u = log_r - (_log_gamma_ratio(a, b) + b * math.log(nu))
    # Q(1/2, z) / r with Q the regularized upper incomplete gamma: Q(1/2, z) = erfc(sqrt z)
    root = math.sqrt(z)
    j = math.sqrt(math.pi) * _scaled_erfc(root) / root
    v = 0.25 / (nu * nu)
    t2 = 0.25 * log_x * log_x
    total, t, cn, n2 = j, 1.0, 1.0, 0.0
    c: list[float] = []
    d: list[float] = []
    for n in range(1, _BGRAT_TERMS + 1):
        bp2n = b + n2
        j = (bp2n * (bp2n + 1.0) * j + (z + bp2n + 1.0) * t) * v
        n2 += 2.0
        t *= t2
        cn /= n2 * (n2 + 1.0)
        c.append(cn)
        s, coefficient = 0.0, b - n
        for i in range(1, n):
            s += coefficient * c[i - 1] * d[n - 1 - i]
            coefficient += b
        d.append((b - 1.0) * cn + s / n)
        term = d[-1] * j
        total += term
        if abs(term) <= _EPS * total:
            break
    return math.exp(log_u + math.log(total))


def _scaled_erfc(s: float) -> float:
    """exp(s^2) erfc(s) for s >= 0, by its asymptotic series where erfc would underflow."""
    if s * s < 700.0:
        return math.exp(s * s) * math.erfc(s)
    inverse2 = 1.0 / (2.0 * s * s)
    total, term = 1.0, 1.0
    for k in range(1, 20):  # terms (2k - 1)!! / (2 s^2)^k, alternating; 1e-30 by k = 10 here
        term *= -(2 * k - 1) * inverse2
        total += term
    return total / (s * math.sqrt(math.pi))


def _stirling_tail(z: float) -> float:
    """ln Gamma(z) minus Stirling's leading terms, for z >= 10."""
    inverse, inverse2 = 1.0 / z, 1.0 / (z * z)
    total = 0.0
    for coefficient in reversed(_STIRLING):
        total = total * inverse2 + coefficient
    return total * inverse


def _binomial_pmf(k: int, n: int, p: float, q: float) -> float:
    """P[Bin(n, p) = k] by Loader's method ("Fast and accurate computation of binomial
    probabilities", 2000): Stirling errors and deviances instead of log-gammas."""
    if k == 0:
        return math.exp(-_deviance(n, n * q) - n * p if p < 0.1 else n * math.log(q))
    if k == n:
        return math.exp(-_deviance(n, n * p) - n * q if q < 0.1 else n * math.log(p))
    log_core = (
        _stirling_error(n)
        - _stirling_error(k)
        - _stirling_error(n - k)
        - _deviance(k, n * p)
        - _deviance(n - k, n * q)
    )
    log_spread = _LN_2PI + math.log(k) + math.log1p(-k / n)
    return math.exp(log_core - 0.5 * log_spread)


def _stirling_error(n: int) -> float:
    """ln(n!) - ln(sqrt(2 pi n) (n/e)^n)."""
    if n <= 15:
        return math.fsum((math.lgamma(n + 1.0), -(n + 0.5) * math.log(n), float(n), -_LN_SQRT_2PI))
    nn = float(n) * n
    s0, s1, s2, s3, s4 = _STIRLING[:5]
    s1, s3 = -s1, -s3  # Loader's series is written with positive coefficients
    if n > 500:
        return (s0 - s1 / nn) / n
    if n > 80:
        return (s0 - (s1 - s2 / nn) / nn) / n
    if n > 35:
        return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n
    return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n


def _deviance(x: float, mean: float) -> float:
    """x ln(x / mean) + mean - x, by its series in v = (x - mean) / (x + mean), which has no
    cancellation for any |v| < 1. Loader switches to the closed form at |v| = 0.1; it loses
    up to 1e-12 to cancellation there, so the series runs to |v| = 0.5 (27 terms at most)."""
    if abs(x - mean) < 0.5 * (x + mean):
        v = (x - mean) / (x + mean)
        total = (x - mean) * v
        term = 2.0 * x * v
        v2 = v * v
        for j in range(1, 1000):
            term *= v2
            following = total + term / (2 * j + 1)
            if following == total:
                return following
            total = following
        return total
    return x * math.log(x / mean) + mean - x
