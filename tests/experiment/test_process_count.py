"""How many --jobs processes a command starts (experiment/executors/processes.py): never more than the
runs left to train, so none for a plan that is done (each helper is an interpreter that imports torch;
--dry-run, --collect-only and --rescore choose this process alone: executors.for_command)."""
from __future__ import annotations

import shutil

from conftest import TINY
from experiment import cli
from experiment.executors import processes

PLAN = ["--strategies", "ft", "ldifs", *TINY[2:]]  # tiny_experiment's two runs, --jobs left to each test


def _started(monkeypatch) -> list[int]:
    """The numbers of processes the command's executor is started with."""
    seen: list[int] = []
    start = processes.ProcessExecutor.start

    def recording(self, jobs: int = 1, *rest) -> None:  # rest: the runs left and the executor settings
        seen.append(jobs)
        start(self, jobs, *rest)
    monkeypatch.setattr(processes.ProcessExecutor, "start", recording)
    return seen


def test_a_plan_with_nothing_left_starts_no_helper(tiny_experiment, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    shutil.copytree(tiny_experiment, out / "micro")
    seen = _started(monkeypatch)
    assert cli.main([*PLAN, "--jobs", "2", "--out", str(out), "--no-plots"]) == 0  # both runs done: collects only
    assert "2 runs planned, 2 already done, 0 to run" in capsys.readouterr().err
    assert seen == [1]


def test_the_number_of_processes_is_the_smaller_of_jobs_and_the_runs_left(tiny_experiment, tmp_path):
    from experiment.arguments import build_parser, resolve_config  # the config as the command resolves it

    out = tmp_path / "out"
    shutil.copytree(tiny_experiment, out / "micro")
    cfg = resolve_config(build_parser().parse_args([*PLAN, "--jobs", "3", "--out", str(out)]))
    runs = sorted((out / "micro" / "runs").iterdir())
    assert len(runs) == 2 and processes.processes_needed(cfg, out) == 1  # none left: this process alone
    (runs[0] / "done").unlink()
    assert processes.processes_needed(cfg, out) == 1  # one left
    (runs[1] / "done").unlink()
    assert processes.processes_needed(cfg, out) == 2  # two left, three asked for
    assert processes.processes_needed(cfg, tmp_path / "elsewhere") == 2  # a new experiment: its whole plan
    assert processes.processes_needed({**cfg, "jobs": 1}, out) == 1
    (runs[0] / "done").touch()
    (runs[1] / "done").touch()
    assert processes.processes_needed(cfg, out, retrain_stale=True) == 3  # any run may be retrained
