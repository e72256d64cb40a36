"""The local executor: this process trains the pending runs one after another."""
from __future__ import annotations

import shutil
import sys
import time

from benchmark.files import atomic_write_text
from evaluation.storage.records import RunLock, check_run, link_problem, unmark_done

FAILED = "failed"  # a run's marker: its training went numerically wrong (the line says where); not done

from .. import interrupts
from .base import Executor, Job


class LocalExecutor(Executor):
    """Trains in this process. `offset`: start at the plan's offset-th pending run and wrap around (the
    k-th process of `--jobs` starts at run k, so that the processes take turns along the plan and each
    gets a share of every strategy rather than all the slow ones)."""

    def __init__(self, offset: int = 0):
        self.offset = offset

    def execute(self, todo: list[dict], job: Job) -> int:
        if todo:
            start = self.offset % len(todo)
            if train_runs(todo[start:] + todo[:start], job):
                return 1  # some runs failed (each named above); the others were trained
        return 0


def train_runs(todo: list[dict], job: Job) -> int:
    """Train every run of `todo` that no other process is training. A run another process holds is
    waited for after ours; if that process died without finishing it, it is trained here. A run whose
    training turns NaN or infinite is named in one line, marked failed (not done), and the plan goes
    on. Returns the number of failed runs."""
    from tqdm import tqdm

    # here, not at the top: choosing an executor (before the configuration is read) imports no torch
    from benchmark.nan_guard import NonFiniteError

    from .. import runner

    t0 = time.time()
    failed = []
    progress = tqdm(total=len(todo), unit="run", desc="runs", position=0, file=sys.stderr, disable=not job.bars)

    def attempt(k: int, r: dict, blocking: bool) -> bool:
        run_dir = job.exp_dir / "runs" / r["run_id"]
        link = link_problem(run_dir) if run_dir.exists() or run_dir.is_symlink() else None
        if link:  # never written through: the plan goes on without it
            print(f"error: run {r['run_id']}: {link}; remove the link to train it here", file=sys.stderr, flush=True)
            failed.append(r["run_id"])
            progress.update(1)
            return True
        lock = RunLock(run_dir)
        if not lock.acquire(blocking=blocking):
            return False
        try:
            why = check_run(run_dir)
            if why is None:  # another process finished it while we waited
                progress.update(1)
                return True
            if (run_dir / "done").exists():
                print(f"run {r['run_id']}: {why}; training it again", file=sys.stderr)
            unmark_done(run_dir)
            (run_dir / FAILED).unlink(missing_ok=True)  # tried again: it may go through this time
            label = f"[{k}/{len(todo)} {r['strategy']['name']} {'>'.join(r['ordering'])} s{r['seed']}]"
            interrupts.set_phase(f"run {r['run_id']}: finished runs are kept; this one has no done marker and "
                                 "reruns from the start next time")
            tb = job.exp_dir / "tensorboard" / tensorboard_name(r) if job.tensorboard else None
            if tb is not None and tb.exists():  # a rerun of an interrupted run: its curves start afresh
                shutil.rmtree(tb)
            try:
                runner.execute_run(r, run_dir, job.resources, label=label, log=job.log, bars=job.bars,
                                   tensorboard_dir=tb)
            except NonFiniteError as e:
                line = f"run {r['run_id']} ({r['strategy']['name']} {'>'.join(r['ordering'])} seed {r['seed']}): {e}"
                atomic_write_text(run_dir / FAILED, line + "\n")
                print(f"error: {line}; recorded as failed in {run_dir / FAILED}, the other runs go on",
                      file=sys.stderr, flush=True)
                failed.append(r["run_id"])
                progress.update(1)
                return True
            print(f"{label} done: run {r['run_id']} ({time.time() - t0:.0f}s elapsed)", file=job.log, flush=True)
            progress.update(1)
            return True
        finally:
            lock.release()

    busy = [(k, r) for k, r in enumerate(todo, 1) if not attempt(k, r, blocking=False)]
    for k, r in busy:
        print(f"run {r['run_id']} is being trained by another process (a --jobs helper, or another command on "
              "this experiment); waiting for it", file=job.log, flush=True)
        interrupts.set_phase("a wait for another process's run: every finished run is kept")
        attempt(k, r, blocking=True)
    progress.close()
    return len(failed)


def tensorboard_name(run: dict) -> str:
    """A run's TensorBoard folder, readable in TensorBoard's run list: strategy and hyperparameters,
    ordering, seed, then the run id (unique), e.g. `ldifs_lam=30__mnist-fashion_mnist__seed0__0a1b2c3d4e5f`.
    Only letters, digits and `.=,_-`: a config value can never choose another folder."""
    import re

    params = ",".join(f"{k}={v}" for k, v in run["strategy"].items() if k != "name")
    parts = [run["strategy"]["name"] + (f"_{params}" if params else ""), "-".join(run["ordering"]),
             f"seed{run['seed']}", run["run_id"]]
    return "__".join(re.sub(r"[^A-Za-z0-9.=,_-]+", "_", p).strip("._")[:80] or "x" for p in parts)
