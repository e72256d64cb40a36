"""What a user sees while a run goes: progress bars on a terminal, plain lines in logs, --quiet."""
from __future__ import annotations

import re
import sys

import pytest

import conftest
from experiment import cli

TINY = [*conftest.TINY, "--no-plots", "--strategies", "ft"]  # these tests are about what is printed, not plots


def test_quiet_prints_only_where_the_results_went(tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path), "-q", *TINY]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.strip().splitlines() == [err.strip().splitlines()[-1]]
    assert err.startswith("finished in ") and err.strip().endswith("micro/report.md")


def test_a_log_gets_one_line_per_epoch_and_step_and_no_bars(tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path), *TINY]) == 0
    out, err = capsys.readouterr()
    # the terminal leaderboard: fixed-point numbers, never scientific notation (-9.920e-04)
    assert "ACC" in out and re.search(r"\d\.\d{4}", out) and not re.search(r"\de[-+]\d", out), out
    assert "task 1: epoch 1/1 loss" in err and "step 2 (digits)" in err and "\r" not in err
    assert err.strip().splitlines()[-1].startswith("finished in ")


def test_a_terminal_gets_progress_bars_with_rate_and_eta(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert cli.main(["--out", str(tmp_path), *TINY]) == 0
    err = capsys.readouterr().err
    assert "runs: 100%" in err and ("run/s]" in err or "s/run]" in err)  # the runs bar, with its rate
    assert "task 2 epoch 1/1" in err and ("it/s" in err or "s/it" in err)  # the epoch bar, with its rate
    assert "evaluation after step 2" in err and ("dataset/s" in err or "s/dataset" in err)  # and the evaluation's
    assert "task 1: epoch 1/1 loss" in err  # log lines still appear, above the bars


def test_profile_prints_a_breakdown_that_adds_up_to_the_wall_time(tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path), "-q", "--profile", *TINY]) == 0
    err = capsys.readouterr().err
    rows = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S.*?) +([0-9.]+) +[0-9.]+%", err, re.M)}
    wall = rows.pop("wall")
    for name in ("start-up (imports, config)", "model load", "step-0 scores", "training",
                 "evaluation: embeddings", "evaluation: probe fits", "record writes", "collection (tables, plots)"):
        assert rows.get(name, -1) >= 0, (name, err)
    # the phases were timed (the table rounds to 0.1 s: a fast machine fits these probes in less)
    from benchmark import profiling

    timed = profiling.snapshot()
    assert timed["training"][0] > 0 and timed["evaluation: probe fits"][0] > 0
    assert timed["evaluation: probe fits"][1] >= 1
    # Phases do not overlap (a nested phase is taken out of its parent): with the untimed rest they make the wall,
    # up to the table's rounding (each row printed to 0.1 s: 0.05 s per row at most).
    assert abs(sum(rows.values()) - wall) <= 0.05 * (len(rows) + 1) + 1e-9, err
    assert "peak memory (resident) of this process:" in err and "GiB" in err
    assert err.strip().splitlines()[-1].startswith("finished in ") and "peak memory" in err.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def jobs2(tmp_path_factory):
    """ft and ldifs (lam 30, the preset's) on TINY with --jobs 2 and --tensorboard, trained once for the
    two tests below (once per session for all xdist workers, wherever the two tests run): the helper
    process's records, and each run's TensorBoard logs. (out, exit status, what it printed on stderr)"""
    import contextlib
    import io
    import json

    def make(folder):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main(["--out", str(folder), "-q", *JOBS2, "--jobs", "2", "--tensorboard"])
        (folder / "result.json").write_text(json.dumps([code, err.getvalue()]))
    folder = conftest._once_for_all_workers(tmp_path_factory, "test_cli_jobs2", make)
    code, err = json.loads((folder / "result.json").read_text())
    return folder, code, err


JOBS2 = [*TINY[:-1], "ft", "ldifs", "--set", "threads=1"]


# the two tests of the --jobs 2 command on one xdist worker: the other worker does not wait for its training
@pytest.mark.xdist_group("test_cli_jobs2")
def test_tensorboard_logs_loss_curves_and_penalties_without_changing_the_run(jobs2, capsys):
    import json

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # the ldifs:lam=30 run of the --jobs 2 --tensorboard plan (its ldifs is the preset's, lam 30)
    root, code, _ = jobs2
    args = [*TINY[:-1], "ldifs:lam=30"]
    assert code == 0
    runs = [p for p in (root / "micro" / "runs").iterdir()
            if json.loads((p / "config.json").read_text())["strategy"]["name"] == "ldifs"]
    assert len(runs) == 1
    # a readable run name in TensorBoard's list: strategy and parameters, ordering, seed, run id
    (logs,) = [p for p in (root / "micro" / "tensorboard").iterdir() if p.name.startswith("ldifs")]
    assert logs.name.startswith("ldifs_lam=30.0,anchor=previous,layers=reference,norm_axis=1__textures-digits__seed")
    assert logs.name.endswith(runs[0].name)
    acc = EventAccumulator(str(logs))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    mb = [t for t in tags if t.startswith("Loss_MB")]
    assert mb and any(t.startswith("Loss_Epoch") for t in tags), tags
    # one curve per task: 2 tasks x 1 epoch x 2 mini-batches (40 training images, batches of 20)
    points = [e for t in mb for e in acc.Scalars(t)]
    assert len(mb) == 2 and len(points) == 4 and all(e.value > 0 for e in points), mb
    # the penalty term at every training step, unweighted and as the loss received it
    raw, weighted = acc.Scalars("penalty/ldifs"), acc.Scalars("penalty/ldifs x 30")
    assert len(raw) == 4 and [e.step for e in raw] == [e.step for e in weighted]
    assert all(abs(w.value - 30 * r.value) <= 1e-6 * max(1.0, w.value) for r, w in zip(raw, weighted))
    # and per task in the records: the mean over the task's 2 mini-batches
    steps = json.loads((runs[0] / "records.json").read_text())["steps"]
    assert "penalties" not in steps[0]
    for k in (1, 2):
        p = steps[k]["penalties"]["ldifs"]
        assert p["weight"] == 30 and p["steps"] == 2 and p["weighted_mean"] == pytest.approx(30 * p["mean"])
        assert p["mean"] == pytest.approx((raw[2 * k - 2].value + raw[2 * k - 1].value) / 2, rel=1e-5)
    # the evaluation after every step (x: the step), the same numbers as the records
    rec = json.loads((runs[0] / "records.json").read_text())
    for j, d in enumerate(rec["suite"]):
        for name in ("LP", "ZS"):
            assert [e.value for e in acc.Scalars(f"eval/{name}/{d}")] == pytest.approx([r[j] for r in rec[name]], abs=1e-7)
            assert [e.step for e in acc.Scalars(f"eval/d{name}/{d}")] == [0, 1, 2]
    assert [e.value for e in acc.Scalars("eval/R/task2_digits")] == pytest.approx([r[1] for r in rec["R"]], abs=1e-7)
    assert {f"drift/ldifs/textures/{tap}" for tap in rec["drift"]["taps"]} <= set(tags)
    assert any(t.startswith("drift/cka/digits/") for t in tags)
    assert [e.value for e in acc.Scalars("train/loss_epoch")] == pytest.approx([s["loss"][0] for s in steps[1:]], rel=1e-6)
    assert {"final/ACC", "final/BWT", "final/dLP_all"} <= set(tags)
    # Logging is not part of the run's identity: the same run without it is already done.
    assert cli.main(["--out", str(root), "--dry-run", *args]) == 0
    assert "1 already done" in capsys.readouterr().err


@pytest.mark.xdist_group("test_cli_jobs2")
def test_jobs_share_the_runs_out_and_give_the_records_of_one_process(tiny_experiment, jobs2, capsys):
    import json

    two = JOBS2
    root, code, err = jobs2
    assert code == 0
    assert "GiB per process x 2" in err  # the helper trained: two processes' memory
    from test_trackers import assert_evaluation_in_tensorboard

    assert_evaluation_in_tensorboard(root / "micro")  # the helper's run logged its evaluation too
    # one process: the same plan (threads 1 is the preset's) trained with --jobs 1, once per session (conftest.py)
    assert cli.main(["--out", str(tiny_experiment.parent), "--dry-run", *two]) == 0
    assert "2 runs planned, 2 already done, 0 to run" in capsys.readouterr().err  # the same two runs
    jobs1 = tiny_experiment.parent

    def records(root):
        out = {}
        for p in sorted((root / "micro" / "runs").glob("*/records.json")):
            r = json.loads(p.read_text())
            out[p.parent.name] = (r["R"], r["LP"], r["ZS"])
        return out

    a, b = records(root), records(jobs1)
    assert len(a) == 2 and a == b
    assert (root / "micro" / "leaderboard.csv").read_text() == \
        (jobs1 / "micro" / "leaderboard.csv").read_text()


def test_helpers_started_early_stay_silent_on_bad_input_and_leave(tmp_path, capsys):
    """Helpers start before the configuration is checked (their imports overlap the parent's); on bad
    input the parent alone reports it, in one line, and no helper is left running."""
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    assert cli.main(["--out", str(tmp_path), *TINY, "--jobs", "3", "--set", "train.lr=abc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.lr" in err, err
    assert {p.pid for p in psutil.Process().children(recursive=True)} - before == set()
    assert not (tmp_path / "micro").exists()


def test_jobs_out_of_range_is_one_line(tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path), *TINY, "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "jobs" in err and "greater than or equal to 1" in err, err
