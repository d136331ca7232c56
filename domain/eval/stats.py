"""The statistics an eval report needs, small and exact enough to test
against published tables.

No library of the project's dependencies provides them (scipy is not one,
and pulling it in for five functions would triple the install), so they are
written here from their textbook definitions:

* :func:`wilson` -- the Wilson score interval of a proportion (pass rates);
  unlike the normal approximation it stays inside [0, 1] and is sound at
  5 or 15 trials and at 0 % or 100 %.
* :func:`t_ppf` / :func:`t_sf` -- Student's t through the regularised
  incomplete beta function (Lentz's continued fraction, Numerical Recipes
  §6.4), for :func:`mean_interval` (means of cost, tokens, duration) and
  :func:`welch` (is a difference in means significant?).
* :func:`fisher_exact` -- two-sided Fisher's exact test of two pass rates,
  exact at the small counts evals have.
* :func:`quantile` -- linear interpolation between order statistics
  (Hyndman-Fan type 7), the definition DuckDB's ``quantile_cont`` uses, so
  the report's p50/p95 equal what ``uok sql`` computes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

Z95 = 1.959963984540054  # the standard normal's 0.975 quantile


class Interval(NamedTuple):
    estimate: float
    low: float
    high: float


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """The proportion ``successes / trials`` with its Wilson score interval
    (95 % by default). No trials: estimate 0, interval [0, 1] (nothing known)."""
    if trials <= 0:
        return Interval(0.0, 0.0, 1.0)
    if not 0 <= successes <= trials:
        raise ValueError(f"successes {successes} outside 0..{trials}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (df may be fractional)."""
    if df <= 0:
        raise ValueError("degrees of freedom must be > 0")
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t (bisection on :func:`t_sf`, to 1e-12)."""
    if not 0.0 < q < 1.0:
        raise ValueError("quantile must be in (0, 1)")
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > 1.0 - q:
        hi *= 2.0
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = (lo + hi) / 2.0
        if t_sf(mid, df) > 1.0 - q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


def variance(values: Sequence[float]) -> float:
    """The sample variance (n - 1); 0 for fewer than two values."""
    n = len(values)
    if n < 2:
        return 0.0
    m = mean(values)
    return math.fsum((v - m) ** 2 for v in values) / (n - 1)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The mean with its t interval. One value: the interval is the value
    itself widened to nothing known (-inf, inf); none: all zero."""
    n = len(values)
    if n == 0:
        return Interval(0.0, 0.0, 0.0)
    m = mean(values)
    if n == 1:
        return Interval(m, -math.inf, math.inf)
    half = t_ppf(0.5 + confidence / 2.0, n - 1) * math.sqrt(variance(values) / n)
    return Interval(m, m - half, m + half)


def quantile(values: Sequence[float], q: float) -> float:
    """Type 7 quantile (linear interpolation), as DuckDB's ``quantile_cont``."""
    if not values:
        return 0.0
    s = sorted(values)
    h = (len(s) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


def fisher_exact(a_pass: int, a_n: int, b_pass: int, b_n: int) -> float:
    """Two-sided p-value of Fisher's exact test on a 2x2 table (passes and
    failures of two variants): the probability, with the margins fixed, of a
    table at most as likely as the one observed."""
    row1, col1, total = a_n, a_pass + b_pass, a_n + b_n
    if total == 0:
        return 1.0
    denom = math.comb(total, col1)

    def prob(k: int) -> float:
        return math.comb(row1, k) * math.comb(total - row1, col1 - k) / denom

    observed = prob(a_pass)
    lo, hi = max(0, col1 - (total - row1)), min(row1, col1)
    p = math.fsum(pk for k in range(lo, hi + 1) if (pk := prob(k)) <= observed * (1 + 1e-7))
    return min(1.0, p)


def welch(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) for the means
    of ``a`` and ``b``. Fewer than two values on a side: 1.0 (no evidence).
    Both without spread: 0.0 if the means differ, else 1.0."""
    if len(a) < 2 or len(b) < 2:
        return 1.0
    va, vb = variance(a) / len(a), variance(b) / len(b)
    diff = mean(a) - mean(b)
    if va + vb == 0.0:
        return 0.0 if diff != 0.0 else 1.0
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    return min(1.0, 2.0 * t_sf(abs(t), df))
