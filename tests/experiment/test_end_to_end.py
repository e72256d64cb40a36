"""The whole path through `cli.main(argv)` on a reduced micro preset."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from experiment import cli
from conftest import SMALL
from evaluation.reporting.leaderboard import MAIN_COLS

ROOT = Path(__file__).resolve().parents[2]


# one xdist worker runs the whole file (`make test`: --dist loadgroup): the rerun below writes into the
# experiment folder that another test of the file copies
pytestmark = pytest.mark.xdist_group("test_end_to_end")


@pytest.fixture(scope="module")
def experiment(small_experiment):
    """ft and ldifs on SMALL (conftest.py: trained once per session)."""
    return small_experiment


def _records(exp):
    return {json.loads((p / "config.json").read_text())["strategy"]["name"]: json.loads((p / "records.json").read_text())
            for p in sorted((exp / "runs").iterdir())}


@pytest.mark.numerics
def test_records_are_complete_and_self_describing(experiment):
    recs = _records(experiment)
    assert set(recs) == {"ft", "ldifs"}
    for name, rec in recs.items():
        run_dir = experiment / "runs" / rec["run_id"]
        assert (run_dir / "done").exists()
        assert rec["complete"] and rec["ordering"] == ["textures", "digits"]
        assert rec["suite"] == ["textures", "digits", "mnist"]
        assert len(rec["R"]) == 3 and all(len(r) == 2 for r in rec["R"])  # [T+1, T]
        assert len(rec["LP"]) == 3 and all(len(r) == 3 for r in rec["LP"])  # [T+1, D]
        assert len(rec["ZS"]) == 3 and all(len(r) == 3 for r in rec["ZS"])
        assert all(0.0 <= v <= 1.0 for row in rec["R"] + rec["LP"] + rec["ZS"] for v in row)
        assert rec["config"]["strategy"]["name"] == name and rec["config"]["seed"] == 0
        # LP-init: a task not yet trained is scored with the probe it would start from
        assert rec["R"][0][0] == rec["LP"][0][0] and rec["R"][1][1] == rec["LP"][1][1]
        assert not list(run_dir.glob("*.tmp"))  # atomic writes leave no partial files
        # what decided the CPU's kernels, to tell another machine's numbers from a bug
        from benchmark.numerics import describe

        assert rec["env"]["numerics"] == describe() and "numerics" not in rec["config"]  # native: not in the id


@pytest.mark.numerics
def test_row_zero_is_identical_across_strategies(experiment):
    ft, ldifs = _records(experiment)["ft"], _records(experiment)["ldifs"]
    assert ft["R"][0] == ldifs["R"][0] and ft["LP"][0] == ldifs["LP"][0] and ft["ZS"][0] == ldifs["ZS"][0]
    assert ft["R"][1:] != ldifs["R"][1:] or ft["LP"][1:] != ldifs["LP"][1:]  # the strategies did differ


def test_leaderboard_schema_and_plots(experiment):
    df = pd.read_csv(experiment / "leaderboard.csv")
    assert list(df.columns[:5]) == ["strategy", "params", "ordering", "seed", "run_id"]
    assert set(MAIN_COLS) <= set(df.columns)
    assert {"dLP_textures", "dLP_digits", "dLP_mnist", "dZS_mnist"} <= set(df.columns)
    assert sorted(df["strategy"]) == ["ft", "ldifs"] and set(df["ordering"]) == {"textures>digits"}
    recs = _records(experiment)
    for _, row in df.iterrows():
        rec = recs[row["strategy"]]
        R, LP = rec["R"], rec["LP"]
        assert row["ACC"] == pytest.approx((R[2][0] + R[2][1]) / 2, abs=1e-4)
        assert row["BWT"] == pytest.approx(R[2][0] - R[1][0], abs=1e-4)
        assert row["FWT"] == pytest.approx(R[1][1] - R[0][1], abs=1e-4)
        assert row["dLP_heldout"] == pytest.approx(LP[2][2] - LP[0][2], abs=1e-4)  # mnist is held out
    plots = sorted(p.name for p in (experiment / "plots").glob("*.png"))
    assert len([p for p in plots if p.startswith("accuracy_matrix_")]) == 2
    assert "dLP_per_dataset.png" in plots and "dZS_per_dataset.png" in plots
    assert (experiment / "summary.csv").exists()


def test_rerun_trains_nothing_and_rebuilds_the_same_leaderboard(experiment, monkeypatch, capsys):
    """A rerun of a finished plan, with --no-plots: the same leaderboard from the records, the report
    without plots, and plots/ as the first collection left it."""
    from experiment import runner

    before = (experiment / "leaderboard.csv").read_text()
    plots = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (experiment / "plots").iterdir()}
    assert len(plots) > 10

    def no_training(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runner, "execute_run", no_training)
    assert cli.main(["--strategies", "ft", "ldifs", "--out", str(experiment.parent), *SMALL, "--no-plots"]) == 0
    assert (experiment / "leaderboard.csv").read_text() == before
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (experiment / "plots").iterdir()} == plots
    report = (experiment / "report.md").read_text()
    assert "No plots (collected without plots" in report and "](plots/" not in report
    assert "plots: not drawn (--no-plots)" in capsys.readouterr().err


@pytest.mark.numerics
def test_same_config_and_seed_give_the_same_records(experiment, tmp_path):
    assert cli.main(["--strategies", "ft", "--out", str(tmp_path), *SMALL, "--no-plots"]) == 0
    again = _records(tmp_path / "micro")["ft"]
    first = _records(experiment)["ft"]
    assert again["run_id"] == first["run_id"]
    assert (again["R"], again["LP"], again["ZS"]) == (first["R"], first["LP"], first["ZS"])


def test_a_new_strategy_merges_into_the_existing_leaderboard(experiment, tmp_path):
    import shutil

    exp = tmp_path / "micro"
    shutil.copytree(experiment, exp)
    argv = ["--strategies", "ldifs:lam=1,layers=last", "--out", str(tmp_path), *SMALL, "--no-plots"]
    assert cli.main(argv) == 0
    df = pd.read_csv(exp / "leaderboard.csv")
    assert len(df) == 3 and sorted(df["strategy"]) == ["ft", "ldifs", "ldifs"]
    assert df["params"].fillna("").str.contains('"lam": 1.0,').sum() == 1


@pytest.mark.parametrize("argv, message", [
    (["--strategies", "nope"], "unknown strategy 'nope'; available: "),
    (["--orderings", "mnist,cifar10"], "unknown dataset 'cifar10' in ordering"),
    (["--strategies", "ldifs:lam=-1"], "lam must be >= 0"),
    (["--set", "train.optimiser=sgd"], "unknown setting 'train.optimiser'; allowed in train: epochs,"),
    (["--set", "model.name=ViT-X-99"], "unknown model 'ViT-X-99'"),
    (["--seeds", "x"], "argument --seeds: invalid int value: 'x'"),
    (["--set", "train.lr=fast"], "train.lr: input should be a valid number, unable to parse string as a number, got 'fast'"),
    (["--set", "model.pretrained=nope"], "cannot load model micro-effnet-lite0-minilm with pretrained='nope'"),
    *([(["--device", "cuda"], "no CUDA device is visible here")] if not torch.cuda.is_available() else []),
    (["--out", "/proc/no-results-here"], "cannot write results there"),
    (["--strategies", "ldifs:layers=[0,99]"], "indices must lie in 0..7"),
])
def test_bad_input_gives_one_line_and_exit_code_2(argv, message, tmp_path, capsys):
    try:
        code = cli.main(["--out", str(tmp_path), *argv])
    except SystemExit as e:  # argparse's own errors exit from inside parse_args
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_bad_strategy_from_the_shell_prints_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "run_benchmark.py"), "--strategies", "nope", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    import strategies

    assert p.stderr.strip() == f"error: unknown strategy 'nope'; available: {', '.join(strategies.available())}"


def test_help_documents_the_options():
    p = subprocess.run([sys.executable, str(ROOT / "run_benchmark.py"), "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    for opt in ("--strategies", "--orderings", "--seeds", "--out", "--suite", "--set", "--collect-only"):
        assert opt in p.stdout


@pytest.mark.numerics
def test_records_do_not_depend_on_what_the_process_loaded_before(experiment, tmp_path):
    """A run that builds the model itself (drawing random numbers for open_clip's init) must match the
    same run executed after the model was cached."""
    import io

    from experiment.runner import Resources, execute_run

    first = _records(experiment)["ft"]
    rec = execute_run(first["config"], tmp_path / "run", Resources(), log=io.StringIO())
    assert (rec["R"], rec["LP"], rec["ZS"]) == (first["R"], first["LP"], first["ZS"])
