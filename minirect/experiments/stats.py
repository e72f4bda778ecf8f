"""The statistics of a paired comparison across seeds, without SciPy.

Table 2 compares rectifiers trained from the same seeds: seed s gives one error
per rectifier, and the question is the mean of the per-seed differences
d_s = error(PReLU, s) − error(ReLU, s).

* ``paired_t_interval(a, b)`` — the mean difference d̄ with the 95 % paired t
  interval d̄ ± t_{0.975, n−1} · s_d / √n (s_d the sample standard deviation of
  the d_s). It assumes the d_s are independent draws from a normal distribution;
  with 10 seeds that cannot be checked well, but a mean of bounded differences
  is close to normal long before the differences themselves are, and the t
  interval is the standard choice for so few pairs.
* ``bootstrap_interval(a, b)`` — the percentile bootstrap of d̄ (resampling
  seeds with replacement): no normality assumption, but with 10 pairs it is too
  narrow (it ignores the n/(n−1) of the sample variance and the t tails). A check
  on the t interval, not a replacement.
* ``t_quantile(p, df)`` — Student's t quantile, exact for integer df: the
  closed form of the t distribution's CDF for integer df (Abramowitz & Stegun
  26.7.3–26.7.4), inverted by bisection.
"""

from __future__ import annotations

import math
import random
import statistics


def t_cdf(t: float, df: int) -> float:
    """P(T ≤ t) for Student's t with ``df`` (a positive integer) degrees of freedom.

    With θ = atan(t/√df), A = ``P(abs(T) ≤ abs(t))`` is, for odd df,
    (2/π)(θ + sin θ (cos θ + (2/3) cos³θ + … + (2·4⋯(df−3))/(1·3⋯(df−2)) cos^(df−2) θ)),
    and for even df, sin θ (1 + (1/2) cos²θ + (1·3)/(2·4) cos⁴θ + … + (1·3⋯(df−3))/(2·4⋯(df−2))
    cos^(df−2) θ); then P(T ≤ t) = (1 + sign(t) A) / 2.
    """
    if df < 1 or int(df) != df:
        raise ValueError(f"t_cdf: df must be a positive integer, got {df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df % 2:                       # odd: 1, 3, 5, ...
        term, total = c, c if df > 1 else 0.0
        for k in range(3, df - 1, 2):       # terms cos^k θ, k = 3, 5, ..., df − 2
            term *= c * c * (k - 1) / k
            total += term
        a = 2.0 / math.pi * (theta + s * total)
    else:                            # even: 2, 4, 6, ...
        term, total = 1.0, 1.0
        for k in range(2, df - 1, 2):       # terms cos^k θ, k = 2, 4, ..., df − 2
            term *= c * c * (k - 1) / k
            total += term
        a = s * total
    return 0.5 * (1.0 + math.copysign(a, t))


def t_quantile(p: float, df: int) -> float:
    """The t with P(T ≤ t) = ``p`` (Student's t, integer ``df``), by bisection on ``t_cdf``."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def paired_differences(a, b) -> list:
    """[a_s − b_s] for paired samples of the same length."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"paired samples must have the same length, got {len(a)} and {len(b)}")
    return [x - y for x, y in zip(a, b)]


def paired_t_interval(a, b, level: float = 0.95) -> dict:
    """Mean of a − b over pairs, its standard error and the paired t interval at ``level``.

    Returns {"n", "mean", "sd", "se", "df", "t", "low", "high"}: sd is the sample
    standard deviation of the differences (n − 1 in the denominator), se = sd/√n,
    t the (1 + level)/2 quantile with n − 1 degrees of freedom.
    """
    d = paired_differences(a, b)
    n = len(d)
    if n < 2:
        raise ValueError("a paired t interval needs at least two pairs")
    mean, sd = statistics.fmean(d), statistics.stdev(d)
    se = sd / math.sqrt(n)
    t = t_quantile(0.5 + level / 2.0, n - 1)
    return {"n": n, "mean": mean, "sd": sd, "se": se, "df": n - 1, "t": t,
            "low": mean - t * se, "high": mean + t * se}


def bootstrap_interval(a, b, level: float = 0.95, resamples: int = 10_000, seed: int = 0) -> dict:
    """Percentile bootstrap interval of the mean of a − b (pairs resampled with replacement,
    a fixed seed: the same numbers every time)."""
    d = paired_differences(a, b)
    rng = random.Random(seed)
    n = len(d)
    means = sorted(sum(rng.choices(d, k=n)) / n for _ in range(resamples))
    tail = (1.0 - level) / 2.0
    low = means[int(math.floor(tail * (resamples - 1)))]
    high = means[int(math.ceil((1.0 - tail) * (resamples - 1)))]
    return {"n": n, "mean": statistics.fmean(d), "low": low, "high": high,
            "resamples": resamples}


def excludes_zero(interval: dict) -> bool:
    """Does the interval [low, high] leave out 0?"""
    return interval["low"] > 0.0 or interval["high"] < 0.0
