"""The plots' rules for stating uncertainty, on the committed sample records (tests/data/sample_experiment):
ft has 2 seeds on a>b and b>a, ldifs 1; both have seed 0 of a>b, b>a and c."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from evaluation.reporting import compare as C, plots
from evaluation.reporting.leaderboard import labels, leaderboard_from, load_runs

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_experiment"


@pytest.fixture(scope="module")
def runs():
    return load_runs(SAMPLE)


@pytest.fixture(scope="module")
def df(runs):
    d = leaderboard_from(runs)
    return d.assign(label=labels(d))


@pytest.fixture()
def figures(monkeypatch):
    """The figures the plots would write, kept open for inspection instead of saved."""
    kept = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: kept.append(fig))
    yield kept
    plt.close("all")


def test_strategies_are_compared_only_over_shared_orderings_and_seeds(df):
    shared, excluded = C.shared_coverage(df)
    assert sorted(zip(shared["label"], shared["ordering"], shared["seed"])) == sorted(
        (lab, o, 0) for lab in ("ft", "ldifs") for o in ("a>b", "b>a", "c"))
    assert excluded == ["ft: 2 run(s) outside the shared orderings and seeds (a>b seed 1; b>a seed 1)"]
    # a strategy that shares nothing with the others is listed, not pooled in
    only_c = df[~((df["label"] == "ldifs") & (df["ordering"] != "c")) & ~((df["label"] == "ft") & (df["ordering"] == "c"))]
    shared, excluded = C.shared_coverage(only_c)
    assert set(shared["label"]) == {"ft"} and excluded == ["ldifs: no ordering and seed shared with ft"]


def test_intervals_need_two_seeds_and_accuracies_stay_in_0_1():
    m, lo, hi, n = C.interval([0.9])
    assert (m, n) == (0.9, 1) and math.isnan(lo) and math.isnan(hi)
    assert C.error_bars([(0.9, lo, hi, 1)]) == [[0.0], [0.0]]  # nothing drawn
    m, lo, hi, n = C.interval([0.9, 0.8], clip=(0.0, 1.0))  # t-interval 85 ± 63.5 -> [21.5, 100]
    assert (m, n) == pytest.approx((0.85, 2)) and lo == pytest.approx(0.2147, abs=1e-3) and hi == 1.0


def test_the_front_ignores_no_uncertainty():
    p = lambda x, ex, y, ey: ((x, x - ex, x + ex), (y, y - ey, y + ey))  # noqa: E731
    # B is below and left of A but the intervals overlap: both stay on the front
    assert C.pareto_front_uncertain([p(0.0, 0.05, 0.8, 0.05), p(-0.05, 0.05, 0.75, 0.05)]) == [1, 0]
    # C is dominated beyond both intervals
    assert C.pareto_front_uncertain([p(0.0, 0.01, 0.8, 0.01), p(-0.2, 0.01, 0.5, 0.01)]) == [0]
    # one seed (no interval): never called dominated
    nan = math.nan
    assert C.pareto_front_uncertain([p(0.0, 0.01, 0.8, 0.01), ((-0.2, nan, nan), (0.5, nan, nan))]) == [1, 0]


def test_held_out_datasets_are_named():
    assert C.held_out_status(["a>b", "b>a"], ["a", "b", "c"]) == {"a": "", "b": "", "c": "held-out"}
    assert C.held_out_status(["a>b", "c"], ["a", "c"]) == {"a": "held-out in 1/2", "c": "held-out in 1/2"}


def test_per_dataset_bars_draw_no_interval_for_one_seed_and_mark_held_out(df, figures):
    assert plots.forgetting_bars(df, "dLP", Path("unused.png"))
    (fig,) = figures
    ax = fig.axes[0]
    for container in ax.containers:
        if hasattr(container, "errorbar") and container.errorbar is not None:
            segs = container.errorbar.lines[2][0].get_segments()
            assert all(np.allclose(s[0], s[1]) for s in segs)  # zero length: shared seeds are one (seed 0)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["a\n(held-out in 1/3)", "b\n(held-out in 1/3)", "c\n(held-out in 2/3)"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["ft (n=1 seed, no interval)", "ldifs (n=1 seed, no interval)"]
    assert any("ft: 2 run(s) outside the shared orderings" in t.get_text() for t in fig.texts)
    # ft's dLP on b over its shared runs a>b, b>a, c (seed 0): (.4 + .2 + .1) / 3 -> 23.3 points
    from matplotlib.container import BarContainer

    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    heights = [round(b.get_height(), 1) for b in bars[0]]
    assert heights == [0.0, 23.3, -10.0]


def test_accuracy_vs_forgetting_keeps_overlapping_points_on_the_front(df, figures):
    assert plots.accuracy_vs_forgetting(df, Path("unused.png"))
    ax = figures[0].axes[0]
    squares = [line for line in ax.get_lines() if line.get_marker() == "s"][0]
    assert len(squares.get_xdata()) == 2  # n = 1 each: neither is called dominated beyond the intervals
    # but the dashed front joins only the points that no other dominates on the means (it used to
    # join a dominated point): here one strategy's means dominate the other's
    front = [line for line in ax.get_lines() if line.get_linestyle() == "--"][0]
    assert len(front.get_xdata()) == 1


def test_one_ordering_sensitivity_figure_on_a_shared_scale(df, figures):
    assert plots.ordering_sensitivity(df, Path("unused.png"))
    (fig,) = figures
    axes = [ax for ax in fig.axes]
    assert len(axes) == 4  # one row (tasks a, b) x ACC, BWT, FWT, dLP_heldout, every strategy in each
    assert {t.get_text() for t in fig.legends[0].get_texts()} >= {"ft", "ldifs"}
    assert axes[0].get_legend() is None  # the legend is beside the panels, not over the bars


def test_held_out_probe_after_every_step(runs, df, figures):
    assert plots.heldout_probe_steps(runs, df, Path("unused.png"))
    (fig,) = figures
    ab = fig.axes[0]
    assert ab.get_title() == "ordering a>b"
    ft, ldifs = ab.get_lines()[:2]
    # ft a>b seed 0: LP on c (held out) = .8, .7, .6; ldifs .8, .8, .8
    assert np.allclose(ft.get_ydata(), [80, 70, 60]) and np.allclose(ldifs.get_ydata(), [80, 80, 80])
