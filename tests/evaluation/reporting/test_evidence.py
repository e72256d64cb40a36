"""The issue-9 figures on hand-made records, worked out by hand."""
import math

import pytest

from evaluation.reporting.evidence import (evidence, evidence_all, format_evidence, group_labels, heldout, per_group, per_seed,
                                 run_figures, select, task_gain)
from evaluation.storage.records import Records


def rec(strategy, seed, R, LP, ZS=None, ordering=("a", "b"), suite=("a", "b", "c", "d")):
    return Records.model_construct(R=R, LP=LP, ZS=ZS, ordering=list(ordering), suite=list(suite),
                                   config={"strategy": {"name": strategy}, "seed": seed})


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


def test_the_default_preset_is_the_first_seed_of_the_evidence_preset():
    """The README promises that `python run_benchmark.py` trains the evidence preset's first-seed runs, and
    that `--seeds 4 5 6 7 8 9` gives that preset: the same run ids, hence the same records. The evidence
    preset reports only seeds that were not used to choose its setting (0-3 were)."""
    from experiment import config as C

    default = C.validate(C.load_preset("micro"))
    evidence = C.validate(C.load_preset("micro-evidence"))
    assert evidence["seeds"] == [4, 5, 6, 7, 8, 9] and default["seeds"] == [4]
    ids = {r["run_id"] for r in C.plan(evidence)}
    assert {r["run_id"] for r in C.plan(default)} == {r["run_id"] for r in C.plan(evidence) if r["seed"] == 4}
    assert {r["run_id"] for r in C.plan({**default, "seeds": evidence["seeds"]})} == ids


# --- groups: strategy x hyperparameters: a lambda grid is never pooled -----------------


def _grid_runs():
    """ft and two ldifs settings, one task, suite (a, c), three seeds; gain and held-out dLP per seed.

    ft:              gain .10 .12 .14, dLP -.05 -.04 -.06
    ldifs lam=10:    gain .10 .12 .14, dLP -.04 -.03 -.05  -> protection .01 .01 .01, gain gap 0
    ldifs lam=100:   gain .06 .07 .08, dLP -.01  .00  .01  -> protection .04 .04 .07, gain gap -.04 -.05 -.06
    Pooled by name (as before), ldifs would have read dLP -.025 -.015 -.02: protection .025 .025 .04
    (mean .03), gain gap mean -.025: a figure of neither setting."""
    table = {("ft", None): ([0.10, 0.12, 0.14], [-0.05, -0.04, -0.06]),
             ("ldifs", 10.0): ([0.10, 0.12, 0.14], [-0.04, -0.03, -0.05]),
             ("ldifs", 100.0): ([0.06, 0.07, 0.08], [-0.01, 0.0, 0.01])}
    out = []
    for (name, lam), (gains, dlps) in table.items():
        for seed, (g, d) in enumerate(zip(gains, dlps)):
            r = rec(name, seed, [[0.5], [0.5 + g]], [[0.5, 0.8], [0.5 + g, 0.8 + d]], ordering=("a",), suite=("a", "c"))
            if lam is not None:  # every hyperparameter, as a run config holds them; only lam varies
                r.config_strategy.update(lam=lam, anchor="previous", layers="reference")
            out.append(r)
    return out


def test_runs_are_grouped_by_strategy_and_hyperparameters():
    seeds = per_seed(_grid_runs())
    assert set(seeds) == {"ft", "ldifs:lam=10.0", "ldifs:lam=100.0"}  # only the varying one is named
    assert seeds["ldifs:lam=100.0"][2]["dLP_heldout"] == pytest.approx(0.01)
    assert seeds["ldifs:lam=10.0"][2]["dLP_heldout"] == pytest.approx(-0.05)
    assert seeds["ldifs:lam=10.0"][2]["dLP[c]"] == pytest.approx(-0.05) and seeds["ft"][0]["n_orderings"] == 1
    keys = per_group(_grid_runs())
    assert group_labels(keys)[("ldifs", '{"anchor": "previous", "lam": 100.0, "layers": "reference"}')] == \
        "ldifs:lam=100.0"


def test_protector_is_chosen_by_its_hyperparameters_and_never_pooled():
    runs = _grid_runs()
    with pytest.raises(ValueError, match=r"'ldifs' matches 2 groups \(ldifs:lam=10.0, ldifs:lam=100.0\)"):
        evidence(runs)
    ev = evidence(runs, protector="ldifs:lam=100")  # 100 (YAML int) names the config's 100.0
    assert ev["base"] == "ft" and ev["protector"] == "ldifs:lam=100.0"
    assert ev["protection"]["mean"] == pytest.approx(0.05)
    # protection .04 .04 .07: sd = sqrt((.01^2 + .01^2 + .02^2) / 2) = sqrt(3e-4); t(0.975, 2) = 4.302653
    assert ev["protection"]["ci95"] == pytest.approx(4.302653 * math.sqrt(3e-4) / math.sqrt(3), rel=1e-5)
    assert ev["gain_gap"]["mean"] == pytest.approx(-0.05) and ev["holds"]["protection"] is False
    assert ev["protector_gain"]["mean"] == pytest.approx(0.07)
    assert ev["protector_dLP_heldout"]["mean"] == pytest.approx(0.0, abs=1e-12)
    ev10 = evidence(runs, protector="ldifs:lam=10")
    assert ev10["protection"]["mean"] == pytest.approx(0.01) and ev10["protection"]["ci95"] == pytest.approx(0, abs=1e-12)
    assert ev10["gain_gap"]["mean"] == pytest.approx(0.0, abs=1e-12) and ev10["holds"]["protection"] is True
    # the base's figures do not depend on the protector
    assert ev10["dLP_heldout"] == ev["dLP_heldout"] and ev["dLP_heldout"]["mean"] == pytest.approx(-0.05)
    with pytest.raises(ValueError, match=r"no runs of 'ldifs:lam=1'.*groups: ft, ldifs:lam=10.0, ldifs:lam=100.0"):
        select("ldifs:lam=1", per_group(runs))
    assert "ldifs:lam=100.0 - ft dLP held-out" in format_evidence(ev) and "+5.0" in format_evidence(ev)


def test_every_group_against_the_base_paired_by_seed():
    evs = evidence_all(_grid_runs())
    assert [e["protector"] for e in evs] == ["ldifs:lam=10.0", "ldifs:lam=100.0"]
    assert [e["protection"]["mean"] for e in evs] == pytest.approx([0.01, 0.05])
    # pairing: a seed the base lacks is left out of the differences
    runs = [r for r in _grid_runs() if not (r.strategy_name == "ft" and r.seed == 2)]
    ev = evidence(runs, protector="ldifs:lam=100")
    assert ev["paired_seeds"] == [0, 1] and ev["protection"]["mean"] == pytest.approx(0.04)


def test_single_ldifs_setting_keeps_the_plain_name_and_old_keys():
    runs = _runs([0.10, 0.12, 0.14], [-0.05, -0.04, -0.06], [0.11, 0.12, 0.13], [-0.01, -0.01, -0.01])
    for r in runs:
        if r.strategy_name == "ldifs":
            r.config_strategy["lam"] = 100.0
    ev = evidence(runs)
    assert ev["protector"] == "ldifs" and ev["ldifs_gain"] == ev["protector_gain"]
    assert ev["protection"]["mean"] == pytest.approx(0.04)


def _write_experiment(folder, runs):
    import json

    suite = {"a": "mnist", "c": "textures"}  # real names: the CLI reads chance levels from the catalog
    for k, r in enumerate(runs):
        r = {**r.model_dump(exclude_unset=True), "suite": [suite[d] for d in r.suite],
             "ordering": [suite[d] for d in r.ordering], "complete": True, "wall_s": 1.0, "run_id": f"{k:012x}"}
        d = folder / "runs" / f"run{k:02d}"
        d.mkdir(parents=True)
        (d / "records.json").write_text(json.dumps(r))
    return folder


def test_search_micro_cli_protector_all_and_per_seed(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "search_micro", Path(__file__).resolve().parents[3] / "scripts" / "search_micro.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    exp = _write_experiment(tmp_path / "grid", _grid_runs())

    assert cli.main([str(exp), "--protector", "ldifs:lam=100", "--per-seed"]) == 0
    out = capsys.readouterr().out
    assert "ldifs:lam=100.0 - ft dLP held-out" in out and "ldifs:lam=10.0 -" not in out
    # per seed, in points with two decimals: ldifs lam=100, seed 1: gain +7.00, dLP textures +0.00
    line = next(ln for ln in out.splitlines() if ln.startswith("ldifs:lam=100.0") and ln.split()[1] == "1")
    assert line.split()[2:] == ["1", "+7.00", "+0.00", "+0.00"]
    assert cli.main([str(exp)]) == 0  # the default 'ldifs' is ambiguous here: every group, with a note
    out = capsys.readouterr().out
    assert "ran with several settings" in out and out.count("paired by seed") == 2
    assert cli.main([str(exp), "--all", "--markdown"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 2 and rows[1].startswith("| grid (ldifs:lam=100.0) | 3 |") and "+5.0 ± 4.3" in rows[1]
    assert cli.main([str(exp), "--protector", "ewc"]) == 2
    assert "no runs of 'ewc'" in capsys.readouterr().err
    assert cli.main([str(tmp_path / "nope")]) == 2
