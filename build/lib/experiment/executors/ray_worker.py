"""The Ray worker's side of the Ray executor (executors/ray.py): one run in a private folder of the node.

A worker process trains a run into a private temporary folder of its node and returns the run
folder's files as bytes; it never writes into the experiment folder (the driver does, see ray.py).
What runs share (the loaded model, decoded datasets, zero-shot weights, step-0 scores) stays in the
process's `Resources` across the runs Ray gives it, as in the local executor. Imported by Ray's worker
processes by name, so the repository must be importable there (ray.py puts it on their PYTHONPATH).
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

from benchmark.files import pid_alive
from evaluation.storage.records import CONFIG, RECORDS

PRIVATE_PREFIX = "cfbench-run-"  # <tmp>/cfbench-run-<pid>-<random>/: one run in progress on this node

_resources = None  # this worker process's runner.Resources, kept across its runs
_checked: dict[str, str | None] = {}  # inputs key -> the problem found on this node (None: all present)


class NodeInputError(RuntimeError):
    """Data, weights or the device a run needs are missing on this node: retrying does not help."""


def train_run(run: dict, tensorboard: bool) -> dict:
    """Train `run` here; return {"files": {name: bytes}, "tensorboard": {relative path: bytes}, "node", "pid"}."""
    global _resources
    from benchmark.process_env import prepare_command

    prepare_command()  # as the command does: nothing written in this node's home
    from .. import runner

    _remove_stranded()
    problem = _missing_here(run)
    if problem:
        raise NodeInputError(f"node {socket.gethostname()}: {problem}")
    if _resources is None:
        _resources = runner.Resources()
        # as the driver's pre-flight does before any run: load the model with the process's initial thread
        # pool (the driver's sizes, ray.thread_env), not the run's `threads`; measured on the micro model:
        # loaded under 1 thread, the runs' records differ from the local executor's after their second task
        _resources.model(run["model"], run["device"])
    tmp = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-"))
    try:
        run_dir, tb = tmp / "run", (tmp / "tensorboard" if tensorboard else None)
        with open(os.devnull, "w") as quiet:  # the driver prints one line per finished run
            runner.execute_run(run, run_dir, _resources, log=quiet, bars=False, tensorboard_dir=tb)
        files = {name: (run_dir / name).read_bytes() for name in (CONFIG, RECORDS)}
        curves = {str(p.relative_to(tb)): p.read_bytes() for p in tb.rglob("*") if p.is_file()} if tb else {}
        return {"files": files, "tensorboard": curves, "node": socket.gethostname(), "pid": os.getpid()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def warm_up() -> int:
    """Import the training code in this worker process (the driver's `start`: overlaps its own start)."""
    from benchmark.process_env import prepare_command

    prepare_command()
    from .. import runner  # noqa: F401 - torch, Avalanche, open_clip

    return os.getpid()


def _missing_here(run: dict) -> str | None:
    """The datasets, weights or device of `run` missing on this node, in one line (checked once per process)."""
    from benchmark.data import check_available
    from benchmark.models import check_weights

    from ..config import device_problem

    d = run["data"]
    key = repr((run["suite"], d.get("root"), d.get("download"), d.get("variants"), run["model"], run["device"]))
    if key not in _checked:
        found = [p for p in [device_problem(run["device"])] if p]
        found += check_available(run["suite"], d["root"], d["download"], d.get("variants"))
        found += check_weights(run["model"], d["download"])
        _checked[key] = "; ".join(found) or None
    return _checked[key]


def _remove_stranded() -> None:
    """Private folders of this node's worker processes that died mid-run (Ray retries their runs)."""
    for p in Path(tempfile.gettempdir()).glob(f"{PRIVATE_PREFIX}*"):
        pid = p.name[len(PRIVATE_PREFIX):].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)

