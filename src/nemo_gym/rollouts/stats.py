"""The statistics Gym reports: a mean reward with its confidence interval, and pass@k.

One module for the numbers the collector's summary line (``summary``) and the viewer
(``nemo_gym.viewer.stats``) print, so both say the same thing:

* rewards that are all 0 or 1 get the Wilson score interval of a proportion (it stays inside
  [0, 1] and is not degenerate at 0 or n successes, unlike the normal approximation);
* other rewards get the Student-t interval of a mean, ``mean ± t(1 - α/2, n - 1) · s / √n``;
* pass@k is the unbiased estimator ``1 - C(n - c, k) / C(n, k)`` over n scored rollouts of a
  task of which c passed (Chen et al. 2021).

The core must install without scipy, so the Student-t quantile is computed here: the t CDF via
the regularized incomplete beta function (a continued fraction, evaluated by the modified Lentz
method), inverted by Newton's method kept inside a bisection bracket. It agrees with
``scipy.stats.t.ppf`` to 1e-9 (relative) up to 10^5 degrees of freedom and to 5e-9 at 10^7,
where ``lgamma``'s rounding dominates (tests). The normal quantile is the standard library's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

IntervalMethod = Literal["wilson", "t"]

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 100_000


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), by the modified Lentz method (x < (a+1)/(a+b+2))."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    value = d
    for m in range(1, _MAX_TERMS):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # even term d_2m
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),  # odd term d_2m+1
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            value *= c * d
        if abs(c * d - 1.0) < _EPS:
            return value
    raise ArithmeticError(f"incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def incomplete_beta(a: float, b: float, x: float, one_minus_x: float | None = None) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1.

    ``one_minus_x`` may be passed when 1 - x is known more precisely than ``1.0 - x``.
    """
    y = 1.0 - x if one_minus_x is None else one_minus_x
    if not (a > 0 and b > 0 and 0.0 <= x <= 1.0):
        raise ValueError(f"incomplete_beta needs a, b > 0 and 0 <= x <= 1 (a={a}, b={b}, x={x})")
    if x == 0.0 or y == 0.0:
        return 0.0 if x == 0.0 else 1.0
    log_front = a * math.log(x) + b * math.log(y)
    log_front += math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, not {df}")
    t2 = t * t
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2))
    return tail if t >= 0 else 1.0 - tail


def t_pdf(t: float, df: float) -> float:
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1) / 2 * math.log1p(t * t / df))


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``scipy.stats.t.ppf``)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile needs 0 < p < 1, not {p}")
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, not {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    if math.isinf(df):
        return NormalDist().inv_cdf(p)
    upper = 1.0 - p  # solve t_sf(t) = upper for t > 0; t_sf falls as t grows
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > upper:
        lo, hi = hi, hi * 2.0
    t = min(max(NormalDist().inv_cdf(p), lo), hi)
    for _ in range(200):
        excess = t_sf(t, df) - upper
        if excess > 0:
            lo = t
        else:
            hi = t
        step = excess / t_pdf(t, df)  # Newton: d/dt t_sf = -pdf
        candidate = t + step
        if not lo < candidate < hi:  # Newton left the bracket: bisect instead
            candidate = (lo + hi) / 2.0
        if abs(candidate - t) <= 1e-14 * max(1.0, abs(t)) or hi - lo <= 1e-14 * hi:
            return candidate
        t = candidate
    return t


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: ``successes`` of ``n`` trials."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"a proportion needs 0 <= successes <= n and n > 0 ({successes}/{n})")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    share = successes / n
    shrink = 1.0 + z * z / n
    centre = (share + z * z / (2 * n)) / shrink
    half = z / shrink * math.sqrt(share * (1.0 - share) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def t_interval(
    mean: float, std: float, n: int, confidence: float = 0.95
) -> tuple[float, float] | None:
    """The Student-t interval of a mean from ``n`` values of sample std ``std`` (None if n < 2)."""
    if n < 2:
        return None
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    return mean - half, mean + half


@dataclass(frozen=True)
class MeanEstimate:
    """A mean with its confidence interval (``low``/``high`` None when n is too small)."""

    n: int
    mean: float
    std: float  # sample standard deviation (n - 1); 0 for one value
    low: float | None
    high: float | None
    method: IntervalMethod
    confidence: float = 0.95


def estimate_mean(
    n: int, mean: float, std: float, ones: int | None, confidence: float = 0.95
) -> MeanEstimate:
    """The estimate from moments: ``ones`` is the count of 1s when every value is 0 or 1."""
    if ones is not None:
        low, high = wilson_interval(ones, n, confidence)
        return MeanEstimate(n, mean, std, low, high, "wilson", confidence)
    bounds = t_interval(mean, std, n, confidence)
    if bounds is None:
        return MeanEstimate(n, mean, std, None, None, "t", confidence)
    return MeanEstimate(n, mean, std, bounds[0], bounds[1], "t", confidence)


class RunningMean:
    """A mean and variance accumulated one value at a time (Welford), and its estimate."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self._m2 = 0.0
        self.ones = 0
        self.binary = True

    def add(self, value: float) -> None:
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self._m2 += delta * (value - self.mean)
        if value == 1.0:
            self.ones += 1
        elif value != 0.0:
            self.binary = False

    @property
    def std(self) -> float:
        return math.sqrt(self._m2 / (self.n - 1)) if self.n > 1 else 0.0

    def estimate(self, confidence: float = 0.95) -> MeanEstimate | None:
        """The mean's estimate (Wilson when every value was 0 or 1, else t); None if empty."""
        if self.n == 0:
            return None
        ones = self.ones if self.binary else None
        return estimate_mean(self.n, self.mean, self.std, ones, confidence)


def mean_estimate(values: Iterable[float], confidence: float = 0.95) -> MeanEstimate | None:
    """The estimate of the mean of ``values`` (None when there are none)."""
    running = RunningMean()
    for value in values:
        running.add(value)
    return running.estimate(confidence)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one task: ``1 - C(n-c, k) / C(n, k)``, as a product (no huge numbers)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    fails_all = 1.0
    for i in range(n - c + 1, n + 1):
        fails_all *= 1.0 - k / i
    return 1.0 - fails_all
