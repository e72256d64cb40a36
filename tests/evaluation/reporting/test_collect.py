"""The collector pinned on committed sample records (tests/data/sample_experiment), worked by hand,
and compared with golden outputs (regenerate: .venv/bin/python tests/data/make_sample_experiment.py)."""
from __future__ import annotations

import importlib.util
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from evaluation.reporting.collect import collect, main as collect_main
from evaluation.storage.identity import hashed_config, run_id

# one xdist worker runs the whole file (`make test`: --dist loadgroup): most of its tests read the one
# collection with plots of the sample (sample_collected), which the other worker would wait for
pytestmark = pytest.mark.xdist_group("test_collect")

DATA = Path(__file__).resolve().parents[2] / "data"
SAMPLE = DATA / "sample_experiment"
GOLDEN = DATA / "sample_experiment_golden"

_spec = importlib.util.spec_from_file_location("make_sample_experiment", DATA / "make_sample_experiment.py")
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)
FT, LDIFS = make.FT, make.LDIFS


def rid(strategy, ordering, seed):
    return make.run_config(strategy, ordering, seed)["run_id"]


@pytest.fixture()
def exp(tmp_path):
    dst = tmp_path / "sample_experiment"  # the same name as when the golden files were made
    shutil.copytree(SAMPLE, dst)
    return dst


def _some_runs(tmp_path, runs):
    """A copy of the sample with only `runs` (run ids): the tests that collect with plots and check no
    numbers of the whole sample draw a few runs' plots, not all nine's."""
    dst = tmp_path / "sample_experiment"
    for r in runs:
        shutil.copytree(SAMPLE / "runs" / r, dst / "runs" / r)
    return dst


# the sample's finished runs on a>b: ft seeds 0 and 1, ldifs seed 0
A_B = [rid(FT, ["a", "b"], 0), rid(FT, ["a", "b"], 1), rid(LDIFS, ["a", "b"], 0)]


@pytest.fixture(scope="module")
def collected(sample_collected):
    """One full collection (plots included) shared by the read-only tests (conftest.py: once per session)."""
    return sample_collected


def test_sample_folders_are_named_by_the_run_id_of_their_config():
    for run_dir in (SAMPLE / "runs").iterdir():
        cfg = json.loads((run_dir / "records.json").read_text())["config"]
        assert run_dir.name == run_id(hashed_config(cfg))


def test_leaderboard_values_by_hand(collected):
    df = pd.read_csv(collected / "leaderboard.csv").set_index("run_id")
    assert len(df) == 8  # the interrupted run (no done marker) is left out
    assert rid(LDIFS, ["a", "b"], 1) not in df.index
    ft0 = df.loc[rid(FT, ["a", "b"], 0)]
    # R = [[.5,.4],[.9,.5],[.7,.8]]: ACC (.7+.8)/2; BWT .7-.9; FWT .5-.4; on R's rows 1..2:
    # Transfer_LP = A[1,2] = .5, Avg_LP (.9+.5+.7+.8)/4; LP final - LP0 = [0, .4, -.2] over a, b, c;
    # c is held out. ZS over a, b after steps 1, 2: A = [[.2,.2],[.1,.3]]: Transfer .2, Avg .2, Last .2
    expected = {"ACC": 0.75, "BWT": -0.2, "FWT": 0.1, "Transfer_LP": 0.5, "Avg_LP": 0.725, "Last_LP": 0.75,
                "Transfer": 0.2, "Avg": 0.2, "Last": 0.2,
                "dLP_heldout": -0.2, "dLP_all": 0.2 / 3, "dZS_heldout": -0.2, "dZS_all": (-0.2 + 0.1 - 0.2) / 3,
                "dLP_a": 0.0, "dLP_b": 0.4, "dLP_c": -0.2, "LP0_c": 0.8}
    for col, want in expected.items():
        assert ft0[col] == pytest.approx(want, abs=1e-4), col
    # ft, b>a, seed 0. R = [[.4,.5],[.9,.6],[.7,.8]] -> Transfer_LP = R[1, a] = .6 (the LP-init probe).
    # ZS rows 1..2 = [[.2,.3,.4],[.3,.2,.3]] over (a, b, c); ZSCL's A takes the ordering's columns b, a:
    # A = [[.3,.2],[.2,.3]] -> Transfer = A[1, a] = .2, Avg = (.3+.2+.2+.3)/4 = .25, Last = (.2+.3)/2 = .25
    ba = df.loc[rid(FT, ["b", "a"], 0)]
    assert (ba["Transfer_LP"], ba["Transfer"], ba["Avg"], ba["Last"]) == pytest.approx((0.6, 0.2, 0.25, 0.25))
    # ldifs, b>a: ZS rows 1..2 = [[.3,.25,.5],[.35,.2,.5]] -> A = [[.25,.3],[.2,.35]]:
    # Transfer = .3, Avg = (.25+.3+.2+.35)/4 = .275, Last = (.2+.35)/2 = .275
    lb = df.loc[rid(LDIFS, ["b", "a"], 0)]
    assert (lb["Transfer"], lb["Avg"], lb["Last"]) == pytest.approx((0.3, 0.275, 0.275))
    assert lb["params"] == '{"lam": 10.0}' and pd.isna(ft0["params"])


def test_single_task_metrics_are_empty_never_zero(collected):
    text = (collected / "leaderboard.csv").read_text().splitlines()
    header = text[0].split(",")
    row = next(line.split(",") for line in text if rid(FT, ["c"], 0) in line)
    cells = dict(zip(header, row))
    for col in ("BWT", "FWT", "Transfer", "Transfer_LP"):
        assert cells[col] == "", col
    # T = 1: ACC = R[1] = .95; ZSCL's Avg = Last = ZS[1, c] = .6
    assert float(cells["ACC"]) == pytest.approx(0.95) and float(cells["Avg"]) == pytest.approx(0.6)


def test_summary_over_seeds_sorted_by_the_primary_metric(collected):
    s = pd.read_csv(collected / "summary.csv")
    ab = s[s["ordering"] == "a>b"].set_index("strategy")
    # ft over seeds 0 and 1 on a>b: ACC .75 and .75; FWT .1 and .2 -> mean .15,
    # CI half-width t(.975, 1) * sd / sqrt(2) = 12.7062 * 0.0707107 / 1.41421 = 0.63531
    assert ab.loc["ft", "n"] == 2 and ab.loc["ft", "ACC"] == pytest.approx(0.75)
    assert ab.loc["ft", "FWT"] == pytest.approx(0.15) and ab.loc["ft", "FWT_ci95"] == pytest.approx(0.6353, abs=1e-3)
    assert pd.isna(ab.loc["ldifs", "ACC_ci95"])  # one seed: no interval
    # within each ordering, the best ACC first: ldifs .825 before ft .75
    assert list(s["ordering"]) == ["a>b", "a>b", "b>a", "b>a", "c", "c"]
    assert list(s["strategy"]) == ["ldifs", "ft", "ldifs", "ft", "ft", "ldifs"]
    md = (collected / "summary.md").read_text()
    assert "| ft |  | a>b | 2 | 75.0 ± 0.0 | -20.0 ± 0.0 | +15.0 ± 63.5 |" in md
    assert '| ldifs | `{"lam": 10.0}` | a>b | 1 | 82.5 | -5.0 |' in md


def test_records_long_is_tidy(collected):
    long = pd.read_csv(collected / "records_long.csv")
    assert list(long.columns) == ["run_id", "strategy", "params", "ordering", "seed", "hp_lam",
                                  "step", "after", "dataset", "metric", "value"]
    # per run: R (T+1) x T entries, LP, ZS, dLP, dZS (T+1) x 3 each; six runs with T = 2, two with T = 1
    assert len(long) == 6 * (3 * 2 + 4 * 3 * 3) + 2 * (2 * 1 + 4 * 2 * 3)
    assert not long.duplicated(["run_id", "step", "dataset", "metric"]).any()
    one = long[(long["run_id"] == rid(FT, ["a", "b"], 0)) & (long["step"] == 2)].set_index(["metric", "dataset"])
    assert one.loc[("dLP", "b"), "value"] == pytest.approx(0.4)
    assert one.loc[("R", "a"), "value"] == pytest.approx(0.7) and one.loc[("ZS", "c"), "value"] == pytest.approx(0.3)
    assert set(one["after"]) == {"b"}
    ldifs = long[long["strategy"] == "ldifs"]
    assert (ldifs["hp_lam"] == 10.0).all() and long.loc[long["strategy"] == "ft", "hp_lam"].isna().all()


def test_ordering_table_and_sensitivity_by_hand(collected):
    o = pd.read_csv(collected / "orderings.csv")
    assert set(o["ordering"]) == {"a>b", "b>a"}  # single tasks are not sequences
    ft = o[o["label"] == "ft"].set_index("ordering")
    assert ft.loc["b>a", "FWT"] == pytest.approx(0.05)  # seeds: .1 and 0
    s = pd.read_csv(collected / "ordering_sensitivity.csv").set_index(["label", "metric"])
    # ft FWT: ordering means .15 and .05 -> SD = .1 / sqrt(2) = .0707; seed variances
    # a>b: (.1-.15)^2*2 = .005, b>a: .005 -> pooled SD sqrt(.005) = .0707
    assert s.loc[("ft", "FWT"), "across_orderings_sd"] == pytest.approx(0.0707, abs=1e-4)
    assert s.loc[("ft", "FWT"), "across_seeds_sd"] == pytest.approx(0.0707, abs=1e-4)
    assert pd.isna(s.loc[("ldifs", "ACC"), "across_seeds_sd"])  # one seed per ordering


GOLDEN_NAMES = ["leaderboard.csv", "records_long.csv", "summary.csv", "summary.md", "orderings.csv",
                "ordering_sensitivity.csv", "tables.md", "tables.tex", "report.md", "forgetting_matrices.csv"]


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_outputs_equal_the_golden_files(collected, name):
    assert name in make.GOLDEN_FILES
    assert (collected / name).read_text() == (GOLDEN / name).read_text(), (
        f"{name} changed; if on purpose, run .venv/bin/python tests/data/make_sample_experiment.py and review the diff")


def test_every_plot_is_written_and_embedded_in_the_report(collected):
    names = sorted(p.name for p in (collected / "plots").glob("*.png"))
    runs = {p.name: json.loads((p / "records.json").read_text()) for p in (SAMPLE / "runs").iterdir()
            if (p / "done").exists()}
    # one run's plots are named by what they show: strategy and parameters, ordering, seed, then the run id
    per_run = [f"{s}_{r['config']['strategy']['name']}" + (f"_lam={r['config']['strategy']['lam']}"
                                                           if "lam" in r["config"]["strategy"] else "")
               + f"__{'-'.join(r['ordering'])}__seed{r['config']['seed']}__{i}.png"
               for i, r in runs.items() for s in ("accuracy_matrix", "task_accuracy")
               # task curves of one run only where it is its strategy and ordering's only seed (ft on a>b and
               # b>a has two: their seed-averaged trajectories stand for them)
               if s == "accuracy_matrix" or r["config"]["strategy"]["name"] == "ldifs" or r["ordering"] == ["c"]]
    # seed-averaged matrices per strategy and ordering, trajectories per ordering (evaluation/reporting/plots_steps.py)
    seed_means = [f"matrix_{k}__{lab}__{o}.png" for k in ("R", "ZS") for lab in ("ft", "ldifs") for o in ("a-b", "b-a", "c")]
    steps = [f"steps_{k}__{o}.png" for k in ("LP", "ZS") for o in ("a-b", "b-a", "c")]
    assert names == sorted(per_run + seed_means + steps +
                           ["accuracy_vs_forgetting.png", "dLP_per_dataset.png", "dZS_per_dataset.png",
                            "heldout_probe_steps.png", "ordering_sensitivity.png",
                            "study_orderings.png",  # the sample varies the ordering: the orderings study
                            "heatmap_LP-init-CE.png", "heatmap_LP-init-LDIFS.png"])  # one per method
    # (no loss__*.png: the sample's records predate the per-epoch loss)
    for p in (collected / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    report = (collected / "report.md").read_text()
    for n in names:
        assert f"](plots/{n})" in report


def test_report_has_setup_and_the_command(collected):
    report = (collected / "report.md").read_text()
    assert "python -m evaluation.reporting.collect results/sample_experiment" in report
    for text in ("- Orderings: a > b; b > a; c", "- Seeds: 0, 1", 'ldifs `{"lam": 10.0}`',
                 "avalanche-lib 0.6.0", "torch 2.14.1", "- Device: cpu",
                 # two jobs in parallel: 180 s of compute in 75 s of wall time (00:00:00 to 00:01:15)
                 "- Compute time: 180 s, the sum over 8 runs", "- Wall time: 75 s, from the first run's start",
                 "## Summary", "## Orderings", "## Paper tables", "## Plots"):
        assert text in report, text


def test_report_without_env_or_packages(exp):
    for p in (exp / "runs").glob("*/records.json"):
        rec = json.loads(p.read_text())
        rec.pop("env", None)
        rec.pop("wall_s", None)
        rec.pop("started", None)
        p.write_text(json.dumps(rec))
    collect(exp, plots=False)
    report = (exp / "report.md").read_text()
    assert "- Software: not recorded" in report and "- Device: not recorded" in report
    assert "- Wall time: not recorded" in report and "- Compute time: not recorded" in report


def test_runs_without_zero_shot_leave_zscl_metrics_empty(tmp_path):
    exp = _some_runs(tmp_path, A_B)
    for p in (exp / "runs").glob("*/records.json"):
        rec = json.loads(p.read_text())
        rec["ZS"] = None  # a model without a text tower
        p.write_text(json.dumps(rec))
    df = collect(exp, plots=True)
    assert df[["Transfer", "Avg", "Last", "dZS_heldout"]].isna().all().all()
    assert df["Transfer_LP"].notna().any()
    assert not (exp / "plots" / "dZS_per_dataset.png").exists()
    assert "dZS" not in (exp / "tables.md").read_text()


def _bad(exp, name, content):
    run_dir = exp / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "records.json").write_text(content)
    (run_dir / "done").write_text("")


def test_bad_records_are_skipped_with_one_warning_line_each(tmp_path, capsys):
    exp = _some_runs(tmp_path, [*A_B, rid(FT, ["b", "a"], 0)])  # four good runs, two of them overwritten below
    good = json.loads((exp / "runs" / rid(FT, ["a", "b"], 0) / "records.json").read_text())
    _bad(exp, "0000000000aa", "{not json")
    _bad(exp, "0000000000bb", json.dumps([1, 2]))
    _bad(exp, "0000000000cc", json.dumps(good))  # a copy in a folder that is not its run id
    wrong_shape = dict(good, R=[[0.5, 0.4], [0.9, 0.5]])
    _bad(exp, good["run_id"], json.dumps(wrong_shape))  # overwrites a good run with a bad matrix
    out_of_range = json.loads((exp / "runs" / rid(FT, ["b", "a"], 0) / "records.json").read_text())
    out_of_range["LP"][1][0] = 7.0
    _bad(exp, rid(FT, ["b", "a"], 0), json.dumps(out_of_range))
    df = collect(exp, plots=True)
    assert len(df) == 2 and good["run_id"] not in set(df["run_id"])  # the two good runs left
    assert set(df["run_id"]) == set(A_B[1:])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(err) == 5
    for name, why in (("0000000000aa", "cannot be read"), ("0000000000bb", "do not match the schema"),
                      ("0000000000cc", "copied from another folder"), (good["run_id"], "R must be"),
                      (rid(FT, ["b", "a"], 0), "outside [0, 1]")):
        assert any(name in line and why in line for line in err), (name, err)
    assert (exp / "report.md").exists() and (exp / "plots" / "accuracy_vs_forgetting.png").exists()


def test_strings_in_records_never_choose_where_plots_are_written(tmp_path):
    # A record that passes every check (its folder is its config's id) but whose strategy name,
    # hyperparameters and dataset names are paths.
    exp = tmp_path / "exp"
    suite = ["../../../../escaped/a", "b/../../../c", ".."]
    ordering = suite[:2]
    cfg = {**make.run_config({"name": "../../../../escaped/x", "lam": "../../y"}, ordering, 0), "suite": suite}
    cfg["run_id"] = run_id(hashed_config(cfg))
    src = json.loads((SAMPLE / "runs" / rid(FT, ["a", "b"], 0) / "records.json").read_text())
    rec = {**src, "config": cfg, "run_id": cfg["run_id"], "ordering": ordering, "suite": suite}
    _bad(exp, cfg["run_id"], json.dumps(rec))
    df = collect(exp, plots=True)
    assert len(df) == 1
    files = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(f.parts[0] == "exp" for f in files)
    assert not list(tmp_path.rglob("escaped*")) and not list(tmp_path.rglob("y*"))
    plots = list((exp / "plots").rglob("*.png"))
    assert len(plots) >= 4 and all(p.parent == exp / "plots" for p in plots)


def test_collect_cli(exp, tmp_path, capsys):
    assert collect_main([str(exp), "--no-plots"]) == 0
    assert (exp / "report.md").exists() and not (exp / "plots").exists()
    assert collect_main([str(tmp_path / "nowhere")]) == 2
    assert "has no runs/ folder" in capsys.readouterr().err


def test_csvs_load_back_in_pandas(collected):
    for name in ("leaderboard.csv", "records_long.csv", "summary.csv", "orderings.csv", "ordering_sensitivity.csv"):
        df = pd.read_csv(io.StringIO((collected / name).read_text()))
        assert len(df) > 0, name


def test_records_that_pass_the_run_checks_but_lack_what_the_tables_read_are_skipped(tmp_path, capsys):
    src = json.loads((SAMPLE / "runs" / rid(FT, ["a", "b"], 0) / "records.json").read_text())
    exp = tmp_path / "exp"
    for strategy, seed, why in (({"lam": 1.0}, 0, "config.strategy.name is missing"),
                                (FT, "zero", "config.seed is not an integer")):
        cfg = make.run_config(strategy, ["a", "b"], 0)
        cfg["seed"] = seed
        cfg["run_id"] = run_id(hashed_config(cfg))
        _bad(exp, cfg["run_id"], json.dumps({**src, "config": cfg, "run_id": cfg["run_id"]}))
    df = collect(exp, plots=True)
    assert len(df) == 0 and (exp / "report.md").exists()
    err = capsys.readouterr().err
    assert "config.strategy.name is missing" in err and "config.seed is not an integer" in err


def test_the_report_names_the_numeric_paths_and_says_when_runs_mix_them():
    from evaluation.reporting.report import numerics_line

    avx512 = {"numerics": {"fingerprint": "aaa", "capability": "AVX512", "cpu": "Xeon"}}
    avx2 = {"numerics": {"fingerprint": "bbb", "capability": "AVX2", "cpu": "EPYC"}}
    one = numerics_line([avx512, avx512])
    assert one == "AVX512 kernels on Xeon (fingerprint `aaa`, 2 runs)"
    mixed = numerics_line([avx512, avx2, {}])
    assert "AVX2 kernels on EPYC (fingerprint `bbb`, 1 run)" in mixed and "MIXED" in mixed
    assert numerics_line([{}, {"numerics": "garbled"}]) == "not recorded"
