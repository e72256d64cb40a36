"""Damaged or hostile records and run folders: named in one line, left out by the collector, redone by the
next run and equal to the original; records that cannot be followed (links, FIFOs, deep nesting) are not;
runs that differ in a setting are not pooled as seeds; result files are whole and have normal permissions."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from evaluation.storage.records import check_run, load_records
from conftest import TINY, run_main, stray_files


@pytest.fixture(scope="module")
def finished(tiny_experiment):
    """ft and ldifs on TINY, finished (conftest.py: trained once per session); read only, or copied."""
    return tiny_experiment


def _copy(finished, tmp_path) -> Path:
    dst = tmp_path / "micro"
    shutil.copytree(finished, dst)
    return dst


def _runs(exp: Path) -> dict[str, Path]:
    return {json.loads((p / "config.json").read_text())["strategy"]["name"]: p for p in (exp / "runs").iterdir()}


def _damage(run: Path, how: str) -> None:
    text = (run / "records.json").read_text()
    rec = json.loads(text)
    if how == "truncate":
        (run / "records.json").write_text(text[: len(text) // 2])
        return
    if how == "ill_typed":
        rec["R"][1][0] = "high"
    elif how == "out_of_range":
        rec["LP"][0][0] = 1.5
    elif how == "wrong_shape":
        rec["LP"] = rec["LP"][:-1]
    elif how == "edited_config":
        rec["config"]["train"]["lr"] = 0.5
    elif how == "incomplete":
        rec["complete"] = False
    (run / "records.json").write_text(json.dumps(rec))


DAMAGES = ["truncate", "ill_typed", "out_of_range", "wrong_shape", "edited_config", "incomplete"]


def _under_seed(exp: Path, run: Path, seed: int) -> Path:
    """A finished copy of `run` under another seed, so another run id, written as a run writes itself:
    its config, its records, then the done marker with the records' checksum."""
    from evaluation.storage.identity import id_of
    from evaluation.storage.records import mark_done

    rec = json.loads((run / "records.json").read_text())
    rec["config"]["seed"] = seed
    rec["run_id"] = rec["config"]["run_id"] = id_of(rec["config"])
    folder = exp / "runs" / rec["run_id"]
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(rec["config"]))
    (folder / "records.json").write_text(json.dumps(rec))
    mark_done(folder)
    return folder


@pytest.fixture(scope="module")
def damaged(finished, tmp_path_factory):
    """One copy of the finished experiment where each kind of damage has a run of its own (ft's run for the
    first, finished copies of it under other seeds for the others), each damaged after its done marker
    was written, then collected once, in this process: (experiment, {kind: run}, exit status, stderr)."""
    out = tmp_path_factory.mktemp("damaged")
    exp = _copy(finished, out)
    ft = _runs(exp)["ft"]
    runs = {DAMAGES[0]: ft, **{how: _under_seed(exp, ft, 100 + i) for i, how in enumerate(DAMAGES) if i}}
    for how, run in runs.items():
        assert check_run(run) is None, how  # finished, until damaged
        _damage(run, how)
    code, err = _in_process(["--collect-only", "--out", str(out), *TINY, "--strategies", "ft", "ldifs"])
    return exp, runs, code, err


@pytest.mark.xdist_group("test_damaged_records")  # all six cases on one worker: one collection
@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_record_is_named_and_left_out_by_the_collector(damaged, how):
    exp, runs, code, err = damaged
    run = runs[how]
    assert check_run(run) is not None
    assert code == 0 and f"run {run.name} is left out" in err and "Traceback" not in err
    assert sum(f"run {run.name} is left out" in line for line in err.splitlines()) == 1, err
    assert list(pd.read_csv(exp / "leaderboard.csv")["strategy"]) == ["ldifs"]


EDITED_WHY = "records.json no longer matches the checksum in its done marker (edited after the run finished?)"


@pytest.fixture(scope="module")
def rerun(finished, tmp_path_factory):
    """What the next commands make of damaged runs, in one copy of the finished experiment and one training
    of each run: ldifs's records edited by hand after its done marker (one accuracy changed; still valid
    as records), collected (--collect-only); then ft's records truncated, and the plan run again. Both in
    this process; a dict of the runs, their original records, and each command's status, stderr and
    leaderboard strategies."""
    from evaluation.storage.records import check_records

    out = tmp_path_factory.mktemp("rerun")
    exp = _copy(finished, out)
    runs = _runs(exp)
    original = {name: load_records(run) for name, run in runs.items()}
    rec = json.loads((runs["ldifs"] / "records.json").read_text())
    rec["R"][1][0] = 0.123
    (runs["ldifs"] / "records.json").write_text(json.dumps(rec))
    assert check_records(rec, runs["ldifs"].name) is None  # only the done marker's checksum tells
    got = {"exp": exp, "runs": runs, "original": original}
    got["collect"] = _in_process(["--collect-only", "--out", str(out), *TINY, "--strategies", "ft", "ldifs"])
    got["collect_board"] = list(pd.read_csv(exp / "leaderboard.csv")["strategy"])
    _damage(runs["ft"], "truncate")
    got["run"] = _in_process(["--strategies", "ft", "ldifs", "--out", str(out), *TINY, "--no-plots"])
    got["run_board"] = sorted(pd.read_csv(exp / "leaderboard.csv")["strategy"])
    return got


def _in_process(argv: list[str]) -> tuple[int, str]:
    """cli.main(argv) in this process: its exit status and what it wrote on stderr."""
    from experiment import cli

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


@pytest.mark.xdist_group("test_damaged_records_rerun")  # one worker: one command for both tests
def test_a_damaged_record_is_redone_and_equal_to_the_original(rerun):
    run = rerun["runs"]["ft"]
    code, err = rerun["run"]
    assert code == 0 and f"run {run.name}: " in err and "training it again" in err
    assert any(f"run {run.name}: " in line and "training it again" in line for line in err.splitlines()), err
    again, original = load_records(run), rerun["original"]["ft"]
    assert (again.R, again.LP, again.ZS) == (original.R, original.LP, original.ZS)
    assert rerun["run_board"] == ["ft", "ldifs"]


@pytest.mark.xdist_group("test_damaged_records_rerun")
def test_a_record_edited_after_its_done_marker_is_left_out_then_retrained_by_the_next_run(rerun):
    """Records still valid as records (one accuracy changed by hand) but not the ones their done marker
    vouches for: the collector names the run in one line that says what happens next and leaves it out
    of the leaderboard; the next command that plans it trains it again, to the original records."""
    run = rerun["runs"]["ldifs"]
    code, err = rerun["collect"]
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert code == 0 and "Traceback" not in err and warnings == [
        f"warning: run {run.name} is left out of the leaderboard: {EDITED_WHY}; the next command whose plan has "
        "this run (not --collect-only or --dry-run) trains it again"], err
    assert rerun["collect_board"] == ["ft"]
    code, err = rerun["run"]
    assert code == 0 and "Traceback" not in err and f"run {run.name}: {EDITED_WHY}; training it again" in err, err[-2000:]
    assert "is left out" not in err and check_run(run) is None  # (a plan warning about the tiny warm-up may stand)
    again, original = load_records(run), rerun["original"]["ldifs"]
    assert (again.R, again.LP, again.ZS) == (original.R, original.LP, original.ZS)
    assert rerun["run_board"] == ["ft", "ldifs"]


def test_a_full_disk_while_plotting_stops_the_collector_in_one_line(finished, tmp_path, capsys, monkeypatch):
    """A plot that fails is skipped with a warning, but not for want of room: every later file would
    fail too, and the command said it had finished. One line naming the file and what it means, exit 2."""
    import errno

    import evaluation.reporting.plots as plots

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    exp = _copy(finished, tmp_path)
    monkeypatch.setattr(plots, "atomic_write_bytes", full)
    code, _, err, _ = run_main(["-q", "--collect-only", "--out", str(tmp_path), *TINY, "--strategies", "ft", "ldifs"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0].startswith(f"error: {exp / 'plots'}/") and lines[0].endswith(
        ".png: No space left on device: the file system is full; free space, or choose another --out (or CFBENCH_CACHE "
        "for the cache); during collection: every finished run is kept; rebuild the tables with --collect-only")
    assert all(check_run(r) is None for r in _runs(exp).values()) and stray_files(exp) == []


def test_records_copied_into_another_run_folder_are_not_counted_twice(finished, tmp_path, capsys):
    exp = _copy(finished, tmp_path)
    runs = _runs(exp)
    shutil.copy(runs["ft"] / "records.json", runs["ldifs"] / "records.json")
    code, _, err, _ = run_main(["--collect-only", "--out", str(tmp_path), *TINY, "--strategies", "ft", "ldifs"], capsys)
    assert code == 0 and "copied from another folder" in err
    df = pd.read_csv(exp / "leaderboard.csv")
    assert list(df["strategy"]) == ["ft"] and df["run_id"].is_unique


def test_result_files_have_normal_permissions(finished):
    umask = os.umask(0)
    os.umask(umask)
    for p in [finished / "leaderboard.csv", *(finished / "runs").rglob("*.json")]:
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, p


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """The heavy imports (torch, open_clip, Avalanche) once, so that the bounds time the cases themselves."""
    import benchmark.models  # noqa: F401
    import experiment.config  # noqa: F401


@pytest.mark.parametrize("how", ["duplicate_keys", "deep", "fifo"])
def test_hostile_records_are_named_not_followed(tmp_path, how):
    run = tmp_path / "runs" / "abc"
    run.mkdir(parents=True)
    (run / "done").write_text("")
    rec = run / "records.json"
    if how == "duplicate_keys":
        rec.write_text('{"run_id": "abc", "run_id": "def"}')
    elif how == "deep":
        rec.write_text("[" * 100_000 + "]" * 100_000)
    else:
        os.mkfifo(rec)
    t0 = time.perf_counter()
    why = check_run(run)
    assert why is not None and "records.json cannot be read" in why and "\n" not in why
    assert time.perf_counter() - t0 < 5


def test_a_hand_edited_record_no_longer_matches_its_done_marker(tmp_path):
    from evaluation.storage.records import mark_done

    run = tmp_path / "runs" / "abc"
    run.mkdir(parents=True)
    (run / "records.json").write_text('{"R": [[0.5]]}')
    mark_done(run)
    assert (run / "done").read_text().startswith("sha256:")
    (run / "done").unlink()
    (run / "done").mkdir()  # a done that is a folder: named, no IsADirectoryError
    assert "marker is not a plain file" in check_run(run)


def test_a_run_folder_name_cannot_forge_a_second_warning_line(tmp_path, capsys):
    from evaluation.storage.records import finished_runs

    run = tmp_path / "runs" / "x\nwarning: forged"
    run.mkdir(parents=True)
    (run / "done").write_text("")
    finished_runs(tmp_path)
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _outside(tmp_path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "lock").write_text("precious\n")
    (out / "records.json").write_text("{damaged")
    (out / "done").write_text("")
    return out


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_run_folder_that_is_a_link_is_named_and_left_alone(tmp_path, capsys):
    from evaluation.storage.records import clean_stale, finished_runs
    from experiment.executors.base import Job
    from experiment.executors.local import train_runs

    outside = _outside(tmp_path)
    before = _snapshot(outside)
    exp = tmp_path / "exp"
    (exp / "runs").mkdir(parents=True)
    (exp / "runs" / "abc123").symlink_to(outside)
    assert clean_stale(exp) == []
    assert finished_runs(exp) == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runs/abc123 is a symbolic link" in err[0]
    run = {"run_id": "abc123", "strategy": {"name": "ft"}, "ordering": ["a"], "seed": 0}
    assert train_runs([run], Job(exp_dir=exp, resources=None, log=sys.stderr)) == 1  # failed, not trained
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: run abc123: runs/abc123 is a symbolic link")
    assert _snapshot(outside) == before


def test_a_lock_that_is_a_link_is_never_written_or_deleted(tmp_path):
    from evaluation.storage.records import LinkError, RunLock, clean_stale

    outside = _outside(tmp_path)
    run = tmp_path / "exp" / "runs" / "abc123"
    run.mkdir(parents=True)
    (run / "lock").symlink_to(outside / "lock")
    clean_stale(tmp_path / "exp")
    with pytest.raises(LinkError):
        RunLock(run).acquire()
    assert (outside / "lock").read_text() == "precious\n" and (run / "lock").is_symlink()


def _rec(lr: float, seed: int):
    from evaluation.storage.records import Records

    cfg = {"strategy": {"name": "ft"}, "ordering": ["a", "b"], "seed": seed, "suite": ["a", "b"],
           "train": {"lr": lr, "epochs": 1}, "model": {"name": "m"}}
    return Records.model_construct(config=cfg, ordering=["a", "b"], suite=["a", "b"],
                                   R=[[0.1, 0.1], [0.5, 0.1], [0.4, 0.6]], LP=[[0.5, 0.5], [0.6, 0.5], [0.55, 0.6]],
                                   ZS=None, complete=True)


def test_runs_differing_in_a_setting_outside_the_strategy_are_not_pooled_as_seeds():
    from evaluation.reporting.leaderboard import leaderboard_from, summary

    runs = [("r1", _rec(1e-3, 0)), ("r2", _rec(1e-2, 0)), ("r3", _rec(1e-2, 1))]
    df = leaderboard_from(runs)
    assert sorted(df["settings"]) == ["train.lr=0.001", "train.lr=0.01", "train.lr=0.01"]
    s = summary(df)
    assert sorted(zip(s["settings"], s["n"])) == [("train.lr=0.001", 1), ("train.lr=0.01", 2)]
    assert s["label"].is_unique
    one = leaderboard_from(runs[1:])  # all agree: no setting shown, one row of two seeds
    assert list(one["settings"]) == ["", ""] and list(summary(one)["n"]) == [2]
