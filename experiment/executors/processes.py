"""The process executor (`--jobs N`): N processes of this command on this host share out the runs.

The helpers are `python -m experiment.helper k` with this command's arguments (experiment/helper.py). They start once the configuration is validated
(an invalid one starts none; their imports overlap this process's data and model checks), and each waits for a "go" on its stdin, sent once this
process has checked the inputs; a helper that gets no "go" leaves without training or writing
anything. Every process trains from the same plan; each run's lock gives it to exactly one of them.
Only this process prints progress and writes the tables.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..settings import lookup
from .base import Executor, Job
from .local import LocalExecutor

MAX_JOBS = 256


class ProcessExecutor(Executor):
    """`argv`: this command's arguments, which each helper reads as its own; `hint`: the number of
    processes asked for, read before validation (`jobs_hint`)."""

    def __init__(self, argv: list[str], hint: int):
        self.argv, self.hint = list(argv), min(int(hint), MAX_JOBS)
        self.helpers: list[subprocess.Popen] = []

    def start(self, jobs: int = 1, left: list[dict] | None = None, settings: dict | None = None) -> None:
        self.hint = min(self.hint, int(jobs))  # the validated number; the hint only chose this executor
        if self.hint > 1:
            self.helpers = [subprocess.Popen([*helper_command(k), *self.argv, "--jobs", str(self.hint)],
                                             stdin=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
                            for k in range(1, self.hint)]

    def execute(self, todo: list[dict], job: Job) -> int:
        # job.jobs is the validated number of processes; helpers beyond it (or beyond the runs) are sent away
        used = self.helpers[:max(0, min(job.jobs, len(todo)) - 1)]
        for h in used:
            _release(h, go=True)
        self.processes = 1 + len(used)
        try:
            own = LocalExecutor().execute(todo, job)
        finally:
            failed = [h.wait() for h in used]
        if own and not any(failed):
            return own
        if any(failed):
            print(f"error: {sum(1 for c in failed if c)} of the {len(used)} helper processes failed "
                  "(their error is above); finished runs are kept, rerun to finish the rest", file=sys.stderr)
            return 1
        return 0

    def close(self) -> None:
        for h in self.helpers:
            _release(h)
        for h in self.helpers:
            h.wait()


class HelperExecutor(Executor):
    """The k-th helper's side: wait for the parent's "go", then train from the plan's k-th pending run."""

    def __init__(self, k: int):
        self.k = k

    def execute(self, todo: list[dict], job: Job) -> int:
        if sys.stdin.readline().strip() != "go":
            return 0  # the parent stopped before training, or has fewer runs than helpers
        return LocalExecutor(offset=self.k).execute(todo, job)


def processes_needed(cfg: dict, out, retrain_stale: bool = False, left: list[dict] | None = None) -> int:
    """How many processes the plan can use: `jobs`, or fewer when fewer runs are left to train (a run
    without its done marker; with --retrain-stale any run may be left, so `jobs`). Each helper is an
    interpreter that imports torch: a rerun with nothing or one run left starts none. `left`: the plan's
    `runs_left`, where the caller has them already."""
    if retrain_stale or cfg["jobs"] <= 1:
        return cfg["jobs"]
    return max(1, min(cfg["jobs"], len(runs_left(cfg, out) if left is None else left)))


def runs_left(cfg: dict, out, retrain_stale: bool = False) -> list[dict]:
    """The plan's runs without their done marker (with --retrain-stale every run of the plan may be left)."""
    from evaluation.storage.records import DONE

    from ..config import plan

    runs = Path(out) / cfg["experiment"] / "runs"
    return [r for r in plan(cfg) if retrain_stale or not (runs / r["run_id"] / DONE).exists()]


def die_with_parent() -> None:
    """In a child process, before it runs (a `preexec_fn`): the kernel kills it when its parent dies (kill -9
    included), so that no orphan trains on alone: cfbench's --jobs helpers, the rehearsal's workers. SIGKILL is what a helper already survives without losing a run (its
    lock is dropped by the kernel, its temporary files are removed by the next start). Linux only;
    elsewhere a helper whose parent died stops at its next read of the parent's pipe."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _release(helper: subprocess.Popen, go: bool = False) -> None:
    """Send a waiting helper "go"; or (go=False) stop it: it has not trained or written anything yet
    (it is importing, or waiting), and whatever of its start-up it leaves is what a kill may leave."""
    if helper.stdin is None or helper.stdin.closed:
        return
    try:
        if go:
            helper.stdin.write("go\n")
        helper.stdin.close()
    except (BrokenPipeError, OSError):  # it has already left
        pass
    if not go:
        helper.kill()


def helper_command(k: int) -> list[str]:
    """How the k-th helper starts: this interpreter and experiment.helper's entry point, found from this
    package's folder so that it works from a checkout and from an installed package alike."""
    root = str(Path(__file__).resolve().parents[2])
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {root!r}); from experiment.helper import entry; "
            "entry()", str(k)]


def jobs_hint(settings: dict) -> int:
    """The number of processes asked for, looked up in experiment.settings.early (the configuration the
    command line gives, read before torch is imported so that helpers can start at once). The validated
    value is the one that counts; a wrong hint only starts helpers that are sent away."""
    value = lookup(settings, "jobs", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def executor_hint(settings: dict) -> str:
    """The executor asked for (`executor.kind`), looked up like `jobs_hint`."""
    return str(lookup(settings, "executor.kind") or "local")


def ray_address_hint(settings: dict) -> str | None:
    """The Ray address asked for (`executor.address`), looked up like `jobs_hint`."""
    value = lookup(settings, "executor.address")
    return None if value in (None, "") else str(value)
