"""The statistics module against reference values computed independently.

The Student-t quantiles, the incomplete beta values and the Wilson intervals below were computed
once with scipy 1.17.1 in a throwaway environment (``scipy.stats.t.ppf``,
``scipy.special.betainc`` and ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``)
and written out here; Gym itself does not depend on scipy.
"""

from __future__ import annotations

import math
from itertools import combinations

import pytest

from nemo_gym.rollouts.stats import (
    RunningMean,
    incomplete_beta,
    mean_estimate,
    pass_at_k,
    t_interval,
    t_quantile,
    wilson_interval,
)

#: scipy.stats.t.ppf(0.975, df): the two-sided 95% quantile.
T_975 = {
    1: 12.706204736174694,
    2: 4.302652729749462,
    5: 2.5705818356363146,
    10: 2.228138851986274,
    29: 2.045229642132703,
    30: 2.0422724563012378,
    31: 2.039513446396408,  # the old table of the viewer said 2.021 here
    40: 2.021075390306273,
    60: 2.0002978220142604,
    100: 1.9839715185235518,
    1000: 1.9623390808264083,
    100000: 1.9599877075346095,
}
#: (p, df, scipy.stats.t.ppf(p, df)) at other probabilities and a fractional df.
T_OTHER = [
    (0.9, 3, 1.637744353696209),
    (0.99, 7, 2.9979515668685277),
    (0.999, 2, 22.327124770119866),
    (0.6, 15, 0.25788530093726125),
    (0.025, 31, -2.039513446396408),
    (0.9999, 1, 3183.098757118502),
    (0.95, 2.5, 2.5582186141359355),
]
#: (a, b, x, scipy.special.betainc(a, b, x)).
BETAINC = [
    (2.5, 0.5, 0.3, 0.018927124071945658),
    (15.5, 0.5, 0.9, 0.07299341812291577),
    (0.5, 0.5, 0.5, 0.5000000000000001),
    (3, 4, 0.2, 0.09888000000000005),
    (100, 0.5, 0.995, 0.31730898797001034),
]
#: (successes, n, low, high) of scipy's 95% Wilson interval.
WILSON = [
    (0, 10, 0.0, 0.27753279986288926),
    (10, 10, 0.7224672001371109, 1.0),
    (7, 10, 0.39677814746114526, 0.892208732593699),
    (31, 50, 0.4815044693099298, 0.7413721068980641),
    (1, 1, 0.20654931437723745, 1.0),
    (500, 1000, 0.4690696003681042, 0.5309303996318958),
]


@pytest.mark.parametrize(("df", "expected"), sorted(T_975.items()))
def test_t_quantile_matches_scipy(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, rel=1e-9, abs=0)


@pytest.mark.parametrize(("p", "df", "expected"), T_OTHER)
def test_t_quantile_other_probabilities(p: float, df: float, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, rel=1e-9, abs=0)


def test_t_quantile_limits_and_bad_arguments() -> None:
    assert t_quantile(0.5, 7) == 0.0
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959963984540054, rel=1e-12)
    for p, df in [(0.0, 3), (1.0, 3), (0.9, 0), (0.9, -1)]:
        with pytest.raises(ValueError):
            t_quantile(p, df)


@pytest.mark.parametrize(("a", "b", "x", "expected"), BETAINC)
def test_incomplete_beta_matches_scipy(a: float, b: float, x: float, expected: float) -> None:
    assert incomplete_beta(a, b, x) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("k", "n", "low", "high"), WILSON)
def test_wilson_matches_scipy(k: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), rel=1e-9, abs=1e-12)


def test_wilson_closed_form_by_hand() -> None:
    # 3 of 4 at z = 1.96: centre (0.75 + 1.96²/8) / (1 + 1.96²/4),
    # half 1.96 / (1 + 1.96²/4) * sqrt(0.75 * 0.25 / 4 + 1.96² / 64).
    z = 1.959963984540054
    centre = (0.75 + z * z / 8) / (1 + z * z / 4)
    half = z / (1 + z * z / 4) * math.sqrt(0.75 * 0.25 / 4 + z * z / 64)
    assert wilson_interval(3, 4) == pytest.approx((centre - half, centre + half), rel=1e-12)
    # scipy.stats.binomtest(3, 4).proportion_ci(method="wilson")
    assert (centre - half, centre + half) == pytest.approx((0.30064184258, 0.95441273919), 1e-10)


def test_t_interval_by_hand() -> None:
    values = [0.2, 0.9, 0.4, 0.7, 0.55, 0.1]
    mean = sum(values) / 6
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 5)
    low, high = t_interval(mean, std, 6) or (math.nan, math.nan)
    assert high - mean == pytest.approx(T_975[5] * std / math.sqrt(6), rel=1e-9)
    assert mean - low == pytest.approx(high - mean, rel=1e-12)
    assert t_interval(0.5, 0.0, 1) is None  # one value: no spread to estimate


def test_mean_estimate_picks_wilson_for_0_1_rewards_and_t_otherwise() -> None:
    binary = mean_estimate([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])
    assert binary is not None and binary.method == "wilson"
    assert (binary.low, binary.high) == pytest.approx(WILSON[2][2:], rel=1e-9)
    assert binary.mean == pytest.approx(0.7)
    assert binary.std == pytest.approx(math.sqrt((7 * 0.3**2 + 3 * 0.7**2) / 9))
    graded = mean_estimate([1.0, 0.5, 0.0, 1.0])
    assert graded is not None and graded.method == "t"
    half = 3.1824463052837078 * math.sqrt(0.6875 / 3) / 2  # scipy.stats.t.ppf(0.975, 3)
    assert (graded.low, graded.high) == pytest.approx((0.625 - half, 0.625 + half), rel=1e-9)
    single = mean_estimate([0.3])
    assert single is not None and single.low is None and single.high is None
    assert mean_estimate([]) is None


def test_running_mean_is_stable_far_from_zero() -> None:
    running = RunningMean()
    for v in [1e9 + 1, 1e9 + 2, 1e9 + 3]:
        running.add(v)
    assert running.mean == 1e9 + 2 and running.std == pytest.approx(1.0, rel=1e-9)


def test_pass_at_k_is_the_unbiased_estimator() -> None:
    # By enumeration: the share of the C(n, k) k-subsets of the n rollouts holding a pass.
    n = 7
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(combinations(outcomes, k))
            expected = sum(any(s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(4, 2))
    assert pass_at_k(200, 3, 100) == pytest.approx(1 - math.comb(197, 100) / math.comb(200, 100))
    for n, c, k in [(3, 4, 1), (3, 1, 0), (3, 1, 4), (3, -1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)
