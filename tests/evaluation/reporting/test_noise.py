"""Small samples said as such (evaluation/reporting/noise.py), worked out by hand."""
from __future__ import annotations

import pytest

from evaluation.reporting.noise import fmt_diff, natural_key, seeds_needed, seeds_needed_unpaired


def test_seeds_needed_by_hand():
    # paired differences with mean 1 and SD 2 (1 +- 2 at two points: [-1, 3], SD = 2.828..; use four: [-1, 1, 1, 3]
    # mean 1, SD sqrt((4 + 0 + 0 + 4) / 3) = 1.633). n solves n >= ((t_.975,n-1 + t_.8,n-1) * 1.633)^2:
    # at n = 24: t_.975,23 = 2.0687, t_.8,23 = 0.8575: (2.9262 * 1.633)^2 = 22.83 -> 23;
    # at n = 23: t_.975,22 = 2.0739, t_.8,22 = 0.8583: (2.9322 * 1.633)^2 = 22.93 -> 23: the fixed point.
    assert seeds_needed([-1, 1, 1, 3]) == 23
    # halving the spread quarters it (roughly: the t quantiles grow as n falls): [0, 1, 1, 2], SD 0.8165
    # n = 8: t_.975,7 = 2.3646, t_.8,7 = 0.8960: (3.2606 * 0.8165)^2 = 7.09 -> 8
    assert seeds_needed([0, 1, 1, 2]) == 8
    assert seeds_needed([1.0]) is None and seeds_needed([-1, 1]) is None  # one value; a mean of exactly 0
    # unpaired, per group: 2 ((t + t) s / d)^2 with the pooled SD; groups [0, 2] and [1, 3]: d = 1, s = 1.414
    # n = 34: dof 66, t_.975 = 1.9966, t_.8 = 0.8468: 2 * (2.8434 * 1.4142)^2 = 32.34 -> 33;
    # n = 33: dof 64, t_.975 = 1.9977, t_.8 = 0.8470: 2 * (2.8447 * 1.4142)^2 = 32.37 -> 33
    assert seeds_needed_unpaired([0, 2], [1, 3]) == 33


def test_a_difference_that_barely_clears_zero_gets_the_digits_to_show_it():
    assert fmt_diff(0.0403, 0.0398) == "+4.03 ± 3.98"  # '+4.0 ± 4.0' would hide why it is bold
    assert fmt_diff(0.0403, 0.021) == "+4.0 ± 2.1"
    assert fmt_diff(-0.05, float("nan")) == "-5.0"


def test_grids_sort_by_number():
    labels = ["ldifs lam=100", "ldifs lam=10", "ft", "ldifs lam=3", "ldifs lam=30"]
    assert sorted(labels, key=natural_key) == ["ft", "ldifs lam=3", "ldifs lam=10", "ldifs lam=30", "ldifs lam=100"]
    assert sorted(["ldifs:lam=1e3", "ldifs:lam=30.0"], key=natural_key) == ["ldifs:lam=30.0", "ldifs:lam=1e3"]
