"""The Ray executor (experiment/executors/ray.py) on a local Ray instance these tests start (1 CPU).

Kept small: the plan of conftest.py's tiny_experiment (its local records), trained a handful of times in all.
Every Ray worker process that trains imports torch, Avalanche and open_clip (several CPU-seconds each),
and a driver has as many workers import them before its first run as the cluster trains runs at once
(executors/ray.py, `warm_count`): with one CPU, one such worker, which then trains its runs one after another.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from experiment import cli
from conftest import FORKED_GROUP, TINY, run_main

# one xdist worker runs the whole file (`make test`: --dist loadgroup): its module fixture (one Ray
# instance) is made once; the worker of the tests that use `forked` (conftest.py), as two of these do
pytestmark = pytest.mark.xdist_group(FORKED_GROUP)

ray = pytest.importorskip("ray")

# tiny_experiment's plan (conftest.py), with --jobs 1; no test here checks plots (collecting a finished plan
# with them was 6 CPU-s a command)
PLAN = ["--strategies", "ft", "ldifs", *TINY, "--no-plots"]
TIMING_KEYS = ("steps", "wall_s", "env", "started", "finished")  # when and where, not what


@pytest.fixture(scope="module")
def cluster(forked):
    """A local Ray instance with 1 CPU; its workers' temporary folder is ours, to see runs in progress.
    (`forked`: started first, so that its imports overlap Ray's start.) No worker processes are started
    ahead of a driver's tasks (Ray's prestart): they would belong to no job and carry none of the
    executor's runtime environment, so Ray would start others for the runs and stop these unused. Two
    idle workers may stay (Ray stops idle ones beyond a soft limit, by default the CPU count): this
    process's, kept for its next Ray plan, while a forked driver's job has one of its own."""
    tmp = Path(tempfile.mkdtemp(prefix="cfr", dir="/tmp"))  # short: Ray's socket paths live under it
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)
    ray.init(num_cpus=1, num_gpus=0, log_to_driver=False, include_dashboard=False, logging_level="ERROR",
             _system_config={"enable_worker_prestart": False, "prestart_worker_first_driver": False,
                             "num_workers_soft_limit": 2})
    try:
        yield {"address": ray.get_runtime_context().gcs_address, "tmp": tmp}
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old
        shutil.rmtree(tmp, ignore_errors=True)


def _records(exp: Path) -> dict:
    out = {}
    for d in sorted((exp / "runs").iterdir()):
        rec = json.loads((d / "records.json").read_text())
        out[d.name] = {k: v for k, v in rec.items() if k not in TIMING_KEYS}
        assert (d / "done").exists() and json.loads((d / "config.json").read_text()) == rec["config"]
    return out


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name == "lock" or p.name.endswith(".tmp")]


def test_same_records_as_local_even_when_a_worker_is_killed_mid_run(cluster, tiny_experiment, tmp_path, capsys):
    local = tiny_experiment  # the same plan on the local executor (conftest.py: trained once per session)

    # the Ray plan, with its worker process killed by pid once it has written step 0's records (the run
    # goes again on a new worker, which then trains the other run too)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault(
        "code", cli.main([*PLAN, "--executor", "ray", "--out", str(tmp_path / "ray"), "--tensorboard"])))
    thread.start()
    killed = None
    deadline = time.time() + 300
    while killed is None and thread.is_alive() and time.time() < deadline:
        for folder in cluster["tmp"].glob("cfbench-run-*"):
            if (folder / "run" / "records.json").exists():
                pid = int(folder.name.split("-")[2])
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
        time.sleep(0.05)
    thread.join()
    assert killed is not None, "no run was seen in progress"
    assert result["code"] == 0
    ray_exp = tmp_path / "ray" / "micro"
    assert _records(ray_exp) == _records(local)
    from test_trackers import assert_evaluation_in_tensorboard

    assert_evaluation_in_tensorboard(ray_exp)  # named and tagged as under the local executor
    pd.testing.assert_frame_equal(pd.read_csv(ray_exp / "leaderboard.csv"), pd.read_csv(local / "leaderboard.csv"))
    assert _leftovers(tmp_path) == [] and _leftovers(local) == []
    # the killed worker's private folder is gone too (the retry's worker removes it)
    assert not list(cluster["tmp"].glob(f"cfbench-run-{killed}-*"))
    err = capsys.readouterr().err
    assert err.count("done: run") >= 2  # one Ray line per finished run


def test_driver_killed_mid_plan_then_restarted_trains_only_the_missing_runs(cluster, tmp_path, forked, capsys):
    out = tmp_path / "out"
    # one run at a time (a run reserves the cluster's one CPU), so the driver dies with one run done and one out
    argv = [*PLAN, "--executor", "ray", "--ray-address", cluster["address"], "--out", str(out),
            "--set", "executor.cpus_per_run=1"]
    # the killed driver is a process of its own (tests/forked.py: forked after the imports), a Ray job
    # whose workers Ray stops with it
    driver = forked.run(argv)
    runs = out / "micro" / "runs"
    deadline = time.time() + 300
    while not list(runs.glob("*/done")) and driver.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    driver.kill()
    driver.wait()
    first = list(runs.glob("*/done"))
    assert len(first) == 1
    stamp = first[0].stat().st_mtime_ns
    # the restart is the command in this process (joined to the same cluster): what is checked is what it
    # trains, and its runs may go to a worker this process's Ray job already has (the other test's)
    code, _, err, _ = run_main(argv, capsys)
    assert code == 0, err
    assert "2 runs planned, 1 already done, 1 to run" in err and err.count("done: run") == 1
    assert first[0].stat().st_mtime_ns == stamp  # the finished run was not trained again
    assert len(list(runs.glob("*/done"))) == 2 and _leftovers(out) == []


@pytest.mark.parametrize("sets, says", [
    (["--set", "executor.gpus_per_run=0.5"], "has no GPU"),
    (["--set", "executor.cpus_per_run=16"], "no node of the Ray cluster has executor.cpus_per_run=16"),
    (["--set", "executor.cpus_per_run=0"], "executor.cpus_per_run"),
    (["--set", "executor.max_retries=-1"], "executor.max_retries"),
])
def test_resources_the_cluster_cannot_give_exit_2_in_one_line(cluster, tmp_path, capsys, sets, says):
    assert cli.main([*PLAN, "--executor", "ray", "--out", str(tmp_path), "-q", *sets]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], err
    assert not list(tmp_path.rglob("done"))


def test_an_address_where_no_cluster_answers_exits_2_in_one_line(tmp_path, forked):
    # a process of its own (this one is connected to the test cluster), forked after the imports
    r = forked.run([*PLAN, "--executor", "ray", "--ray-address", "127.0.0.1:1", "--out", str(tmp_path), "-q"])
    _, err = r.communicate(timeout=300)
    assert r.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --ray-address 127.0.0.1:1: no Ray cluster answers"), lines
    assert not list(tmp_path.rglob("done"))


def test_wall_clock_estimate_schedules_longest_first():
    from experiment.dryrun import wall_clock

    # 4 runs of 3, 2, 2, 1 h on 2 GPUs: longest first gives {3, 1} and {2, 2}: 4 h
    assert wall_clock([1, 2, 3, 2], 2, 1.0) == (4.0, 2)
    # a quarter GPU each: 8 slots, each run 4x as long (the GPU's throughput shared)
    assert wall_clock([1, 2, 3, 2], 2, 0.25) == (12.0, 8)
    r = cli.main(["--config", "paper-single", "--dry-run", "--gpus", "8"])
    assert r == 0


def test_workers_warmed_are_the_runs_the_cluster_trains_at_once(monkeypatch):
    from experiment.executors import ray as ray_executor

    # two alive nodes (16 CPUs + 2 GPUs, 8 CPUs) and a dead one that counts for nothing
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 16, "GPU": 2}},
                                               {"Alive": True, "Resources": {"CPU": 8}},
                                               {"Alive": False, "Resources": {"CPU": 64, "GPU": 8}}])
    count = ray_executor.warm_count
    assert count(1, 0, None) == 16 + 8  # one CPU a run: one worker per CPU
    assert count(4, 0, None) == 4 + 2  # 16 // 4 + 8 // 4, not 24
    assert count(4, 0, [{}] * 3) == 3 and count(4, 0, []) == 0  # no more than the runs left
    assert count(4, 1, None) == 2  # min(16 // 4, 2 // 1) on the GPU node, none on the CPU-only one
    assert count(2, 0.25, None) == 8  # min(16 // 2, 2 // 0.25)
    assert count(32, 0, None) == 0  # no node fits a run: the command refuses, nothing to warm
