"""Study sections of report.md (evaluation/reporting/studies.py) on hand-made records: the numbers they print are
checked by hand, and a section appears only when the runs vary what it studies."""
from __future__ import annotations

import pytest

from evaluation.reporting.studies import analysis_sections, lambda_section, layers_section, orderings_section
from evaluation.storage.records import Records


def _rec(strategy, seed, gain, dlp, ordering=("a", "b")):
    """Two tasks (R rows chosen so the task gain is `gain`), one held-out dataset h with dLP `dlp`."""
    ordering = list(ordering)
    R = [[0.5, 0.5], [0.5 + gain, 0.5], [0.5 + gain, 0.5 + gain]]
    if len(ordering) != 2:
        T = len(ordering)
        R = [[0.5] * T] + [[0.5 + gain if j < i else 0.5 for j in range(T)] for i in range(1, T + 1)]
    suite = ordering + ["h"]
    LP = [[0.5] * len(suite) for _ in range(len(ordering) + 1)]
    LP[-1][-1] = 0.5 + dlp
    return Records.model_construct(config={"strategy": strategy, "seed": seed}, ordering=ordering, suite=suite, R=R, LP=LP)


def _lambda_runs() -> list:
    """ft, ldifs lam 10 and lam 100 at three seeds: (gain, dLP) in points per seed are ft (10, -8 -9 -10),
    lam 10 (10, -8 -8.9 -9.8), lam 100 (5, -2 -3 -4)."""
    runs = []
    for s in range(3):
        runs.append((f"f{s}", _rec({"name": "ft"}, s, 0.10, -0.08 - 0.01 * s)))
        runs.append((f"a{s}", _rec({"name": "ldifs", "lam": 10.0}, s, 0.10, -0.08 - 0.01 * s + 0.001 * s)))
        runs.append((f"b{s}", _rec({"name": "ldifs", "lam": 100.0}, s, 0.05, -0.02 - 0.01 * s)))
    return runs


def test_lambda_section_by_hand(tmp_path):
    runs = _lambda_runs()
    text = "\n".join(lambda_section(runs, tmp_path))
    # ft: dLP -8, -9, -10 -> -9.0 ± t(0.975, 2) * 1 / sqrt 3 = 4.303 * 0.577 = 2.5
    assert "| ft | 3 | +10.0 ± 0.0 | -9.0 ± 2.5 |" in text
    # lam 100 - ft: dLP +6 in every seed (interval 0 wide: beyond noise); gain -5 in every seed
    assert "| 100.0 | 3 | **-5.0 ± 0.0** | **+6.0 ± 0.0** |" in text
    # lam 10 - ft: dLP +0.0, +0.1, +0.2 -> +0.1 ± 0.2: within noise
    assert "| 10.0 | 3 | +0.0 ± 0.0 | +0.1 ± 0.2 |" in text
    assert "for: 100.0." in text
    assert (tmp_path / "study_lambda.png").exists()
    assert layers_section(runs, tmp_path) == []  # nothing varies `layers`


def test_layers_section_appears_with_two_choices(tmp_path):
    runs = [(f"{k}{s}", _rec({"name": "ldifs", "lam": 30.0, "layers": layers}, s, 0.1, -0.05))
            for k, layers in (("l", "last"), ("r", "reference"), ("e", [0, 1, 2])) for s in range(2)]
    text = "\n".join(layers_section(runs, tmp_path))
    assert "## Study: layers" in text and '| [0, 1, 2] | 2 |' in text and '| last | 2 |' in text


def test_orderings_section_anova(tmp_path):
    runs = []
    for s in range(3):
        runs.append((f"x{s}", _rec({"name": "ft"}, s, 0.1, -0.05 - 0.001 * s, ("a", "b", "c"))))
        runs.append((f"y{s}", _rec({"name": "ft"}, s, 0.1, -0.15 - 0.001 * s, ("c", "b", "a"))))
    text = "\n".join(orderings_section(runs, tmp_path))
    assert "| a>b>c | 3 |" in text and "| c>b>a | 3 |" in text
    # held-out dLP: -5.1 vs -15.1 with a seed SD of 0.1: far beyond noise
    assert "dLP_heldout: SD between orderings 7.1 points, seed SD 0.1; ANOVA p = 0.000: the orderings differ beyond noise." in text
    assert analysis_sections(tmp_path, runs[:1]) == []  # one run: no section at all


def test_within_noise_says_how_many_seeds_would_resolve_it(tmp_path):
    runs = _lambda_runs()
    text = "\n".join(lambda_section(runs, tmp_path))
    # lam 10 - ft: gain differences 0, 0, 0 (no difference to resolve); dLP +0.0, +0.1, +0.2 points: mean 0.1,
    # SD 0.1, so n >= (t_.975,n-1 + t_.8,n-1)^2: at n = 10, (2.2622 + 0.8834)^2 = 9.89 -> 10 (fixed point)
    assert "| 10.0 | 3 | +0.0 ± 0.0 | +0.1 ± 0.2 |  | no difference / ≈10 |" in text  # (no drift recorded)
    # neighbours of the grid, the larger lambda minus the smaller: gain -5 and dLP +6.0, +5.9, +5.8 in the 3 seeds
    assert "| 100.0 - 10.0 | 3 | **-5.0 ± 0.0** | **+5.9 ± 0.2** | beyond noise / beyond noise |" in text
    assert "Every neighbouring pair of the grid is ordered beyond noise on both axes." in text


def test_orderings_below_three_seeds_are_not_tested_and_say_so(tmp_path):
    runs = []
    for s in range(2):
        runs.append((f"x{s}", _rec({"name": "ft"}, s, 0.1, -0.05 - 0.01 * s, ("a", "b", "c"))))
        runs.append((f"y{s}", _rec({"name": "ft"}, s, 0.1, -0.06 - 0.01 * s, ("c", "b", "a"))))
    text = "\n".join(orderings_section(runs, tmp_path))
    assert "ANOVA p" not in text and "beyond noise" not in text
    # dLP: -5.5 and -6.5 (SD 0.707 in each): d = 1, pooled s = 0.707: n >= 2 ((t + t) 0.707)^2 = (t + t)^2
    # per group, dof 2n - 2: at n = 9, (2.1199 + 0.8647)^2 = 8.91 -> 9
    assert ("- dLP_heldout: SD between orderings 0.7 points, seed SD 0.7; not tested: an ANOVA over orderings needs "
            "at least 3 seeds in each ordering, and a>b>c (2), c>b>a (2) have fewer; the two most different "
            "orderings would take about 9 seeds each to tell apart") in text
