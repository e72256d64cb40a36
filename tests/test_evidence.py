"""The issue-9 figures on hand-made records, worked out by hand."""
import math

import pytest

from evaluation.evidence import evidence, format_evidence, heldout, per_seed, run_figures, task_gain


def rec(strategy, seed, R, LP, ZS=None, ordering=("a", "b"), suite=("a", "b", "c", "d")):
    return {"R": R, "LP": LP, "ZS": ZS, "ordering": list(ordering), "suite": list(suite),
            "config": {"strategy": {"name": strategy}, "seed": seed}}


def test_task_gain_is_the_mean_diagonal_step_over_the_head_init():
    # task 1: 0.9 - 0.5 = 0.4; task 2: R[2,2] - R[1,2] = 0.8 - 0.7 = 0.1 -> 0.25
    R = [[0.5, 0.6], [0.9, 0.7], [0.85, 0.8]]
    assert task_gain(R) == pytest.approx(0.25)
    assert task_gain([[0.2], [0.5]]) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        task_gain([[0.1, 0.2], [0.3, 0.4]])


def test_run_figures_average_the_final_deltas_over_held_out_datasets():
    LP = [[0.5, 0.5, 0.8, 0.6], [0.9, 0.5, 0.7, 0.6], [0.9, 0.9, 0.6, 0.5]]
    ZS = [[0.1, 0.1, 0.6, 0.05], [0.1, 0.1, 0.5, 0.05], [0.1, 0.1, 0.4, 0.0]]
    r = rec("ft", 0, [[0.5, 0.5], [0.9, 0.5], [0.9, 0.9]], LP, ZS)
    assert heldout(r) == ["c", "d"]
    f = run_figures(r)
    assert f["gain"] == pytest.approx(0.4)
    assert f["dLP_heldout"] == pytest.approx(((0.6 - 0.8) + (0.5 - 0.6)) / 2)  # -0.15
    assert f["dZS_heldout"] == pytest.approx(((0.4 - 0.6) + (0.0 - 0.05)) / 2)
    # d's zero-shot accuracy (0.05) is below its chance (0.1): only c counts.
    f = run_figures(r, chance={"a": 0.1, "b": 0.1, "c": 0.5, "d": 0.1})
    assert f["dZS_heldout"] == pytest.approx(-0.2)
    f = run_figures(r, chance={"a": 0.1, "b": 0.1, "c": 0.9, "d": 0.1})
    assert math.isnan(f["dZS_heldout"])


def _runs(ft_gain, ft_dlp, ld_gain, ld_dlp):
    """Records of ft and ldifs with one task, suite (a, c): gain and held-out dLP per seed as given."""
    out = []
    for name, gains, dlps in (("ft", ft_gain, ft_dlp), ("ldifs", ld_gain, ld_dlp)):
        for seed, (g, d) in enumerate(zip(gains, dlps)):
            out.append(rec(name, seed, [[0.5], [0.5 + g]], [[0.5, 0.8], [0.5 + g, 0.8 + d]],
                           ordering=("a",), suite=("a", "c")))
    return out


def test_evidence_means_and_t_intervals_over_seeds():
    runs = _runs([0.10, 0.12, 0.14], [-0.05, -0.04, -0.06], [0.11, 0.12, 0.13], [-0.01, -0.01, -0.01])
    ev = evidence(runs)
    assert ev["seeds"] == [0, 1, 2]
    # mean 0.12, sd 0.02, t(0.975, 2) = 4.3027 -> half-width 4.3027 * 0.02 / sqrt(3) = 0.049683
    assert ev["gain"]["mean"] == pytest.approx(0.12)
    assert ev["gain"]["ci95"] == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-5)
    assert ev["dLP_heldout"]["mean"] == pytest.approx(-0.05)
    # protection paired by seed: 0.04, 0.03, 0.05 -> mean 0.04, sd 0.01
    assert ev["protection"]["mean"] == pytest.approx(0.04)
    assert ev["protection"]["ci95"] == pytest.approx(4.302653 * 0.01 / math.sqrt(3), rel=1e-5)
    assert ev["gain_gap"]["mean"] == pytest.approx(0.0)
    assert ev["holds"] == {"gain": True, "forgetting": True, "protection": True}
    text = format_evidence(ev)
    assert "ft task gain" in text and "+12.0" in text and "protection met" in text


def test_evidence_criteria_fail_when_intervals_include_zero_or_gain_drops():
    # ft forgets, but noisily (interval spans 0); ldifs forgets less but gains 5 points less.
    runs = _runs([0.10, 0.12, 0.14], [-0.10, 0.05, -0.01], [0.05, 0.07, 0.09], [0.0, 0.06, 0.01])
    ev = evidence(runs)
    assert ev["holds"]["gain"] is True
    assert ev["holds"]["forgetting"] is False
    assert ev["gain_gap"]["mean"] == pytest.approx(-0.05)
    assert ev["holds"]["protection"] is False
    # a gain below 5 points fails even with a tight interval
    runs = _runs([0.03, 0.03, 0.031], [-0.05, -0.04, -0.06], [0.03, 0.03, 0.03], [0.0, 0.0, 0.0])
    assert evidence(runs)["holds"]["gain"] is False


def test_per_seed_averages_orderings_first_and_single_seed_never_holds():
    a = rec("ft", 0, [[0.5], [0.7]], [[0.5, 0.8], [0.7, 0.7]], ordering=("a",), suite=("a", "c"))
    c = rec("ft", 0, [[0.5], [0.9]], [[0.5, 0.8], [0.5, 0.9]], ordering=("c",), suite=("a", "c"))
    s = per_seed([a, c])["ft"][0]
    assert s["gain"] == pytest.approx(0.3)  # (0.2 + 0.4) / 2
    assert s["dLP_heldout"] == pytest.approx(-0.05)  # a's run: c -0.1; c's run: a 0.0
    ev = evidence([a, c])
    assert math.isnan(ev["gain"]["ci95"]) and ev["holds"]["gain"] is False
    with pytest.raises(ValueError, match="no runs of 'ft'"):
        evidence([rec("ldifs", 0, [[0.5], [0.7]], [[0.5, 0.8], [0.7, 0.7]], ordering=("a",), suite=("a", "c"))])


def test_the_default_preset_is_seed_0_of_the_evidence_preset():
    """The README promises that `python run_benchmark.py` trains the evidence preset's seed-0 runs, and
    that `--seeds 0 1 2 3 4` gives that preset: the same run ids, hence the same records."""
    from benchmark import config as C

    default = C.validate(C.load_preset("micro"))
    evidence = C.validate(C.load_preset("micro-evidence"))
    ids = {r["run_id"] for r in C.plan(evidence)}
    assert {r["run_id"] for r in C.plan(default)} == {r["run_id"] for r in C.plan(evidence) if r["seed"] == 0}
    assert {r["run_id"] for r in C.plan({**default, "seeds": evidence["seeds"]})} == ids
