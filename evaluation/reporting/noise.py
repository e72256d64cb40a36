"""Small samples said as such (no torch): how many seeds a comparison would need, differences printed
with enough digits to show whether their interval clears zero, and grids listed in numeric order.

- `seeds_needed(diffs)`: from paired differences (one per seed), the number of pairs a two-sided paired
  t-test at alpha = 0.05 needs for 80% power if the true mean difference and its spread were the observed
  ones: the smallest n with n >= ((t_{1-alpha/2, n-1} + t_{power, n-1}) * s / |mean|)^2. Rough: the
  observed mean and SD of a few seeds are themselves noisy (the estimate can be off by a factor of 2).
- `seeds_needed_unpaired(a, b)`: the same per group for two independent groups (pooled SD, equal n):
  n >= 2 ((t + t) s / |mean_a - mean_b|)^2.
- `fmt_diff`: '+4.0 ± 4.0' where the interval clears 0 by less than the printed precision becomes
  '+4.03 ± 3.98': digits are added until the mean's and the half-width's printed values differ.
- `natural_key`: 'ldifs lam=3' < 'ldifs lam=10' < 'ldifs lam=100' (numbers compared as numbers).
"""
from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np

MIN_CORRELATION_POINTS = 4  # Fisher's z interval needs n - 3 > 0; below 4 points no r is reported
MIN_SEEDS_PER_GROUP = 3  # a one-way ANOVA over orderings: at least this many seeds in every ordering
MAX_SEEDS = 10_000


def natural_key(text) -> tuple:
    """A sort key that orders the numbers inside a text by value: lam=3 < lam=10 < lam=100."""
    parts = re.split(r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)", str(text))
    return tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts) if p != "")


def _needed(effect: float, sd: float, factor: float, dof) -> int | None:
    from scipy.stats import t

    if not (math.isfinite(effect) and math.isfinite(sd)) or effect == 0:
        return None
    if sd == 0:
        return 2
    ratio = sd / abs(effect)
    n = 2
    for _ in range(200):  # the t quantiles shrink as n grows: iterate to the fixed point
        k = max(dof(n), 1)
        want = math.ceil(factor * ((t.ppf(0.975, k) + t.ppf(0.8, k)) * ratio) ** 2)
        want = max(want, 2)
        if want == n or want > MAX_SEEDS:
            return min(want, MAX_SEEDS)
        n = want
    return n


def seeds_needed(diffs: Sequence[float]) -> int | None:
    """Pairs (seeds) for 80% power of a paired t-test at the observed mean and SD of `diffs` (None: no
    estimate, fewer than 2 differences or a mean of exactly 0)."""
    x = np.asarray([v for v in diffs if v is not None and not math.isnan(v)], dtype=float)
    if len(x) < 2:
        return None
    return _needed(float(x.mean()), float(x.std(ddof=1)), 1.0, lambda n: n - 1)


def seeds_needed_unpaired(a: Sequence[float], b: Sequence[float]) -> int | None:
    """Seeds per group for 80% power of a two-sample t-test (pooled SD, equal n) at the observed means."""
    a = np.asarray([v for v in a if not math.isnan(v)], dtype=float)
    b = np.asarray([v for v in b if not math.isnan(v)], dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    return _needed(float(a.mean() - b.mean()), pooled, 2.0, lambda n: 2 * n - 2)


def needed_text(n: int | None) -> str:
    if n is None:
        return "no estimate of the seeds needed (fewer than 2 seeds, or no difference at all)"
    if n >= MAX_SEEDS:
        return f"more than {MAX_SEEDS} seeds would be needed to resolve it (rough)"
    return f"about {n} seeds would resolve it (rough: 80% power at the observed mean and spread)"


def fmt_diff(mean: float, ci: float, scale: float = 100.0, digits: int = 1, signed: bool = True) -> str:
    """'+4.0 ± 2.1' (scaled); no ± part without an interval; where the mean's and the half-width's printed
    values would be equal although one is larger, more digits (up to 4 more) until they differ."""
    if mean is None or math.isnan(mean):
        return ""
    d = digits
    if not math.isnan(ci):
        while d < digits + 4 and f"{abs(mean) * scale:.{d}f}" == f"{ci * scale:.{d}f}" and abs(mean) != ci:
            d += 1
    v = round(mean * scale, d) + 0.0
    text = f"{v:+.{d}f}" if signed else f"{v:.{d}f}"
    return text if math.isnan(ci) else f"{text} ± {ci * scale:.{d}f}"
