"""Executors: how a plan's pending runs are trained (base.Executor).

- `local`: one process, runs one after another (the default);
- `processes`: `--jobs N` processes on this host that share out the runs;
- `ray`: Ray tasks on a Ray cluster (`--executor ray`); the driver writes what workers return.
"""
from __future__ import annotations

from .base import Executor, Job

__all__ = ["Executor", "Job"]


def for_command(settings: dict, argv: list[str], trains: bool, rescore: bool = False) -> Executor:
    """The executor a command trains with, chosen from its settings before they are validated
    (experiment.settings.early): Ray, `--jobs` helpers, or this process (which also scores --rescore and
    runs what trains nothing)."""
    from .local import LocalExecutor
    from .processes import ProcessExecutor, executor_hint, jobs_hint, ray_address_hint

    if rescore or not trains:
        return LocalExecutor()
    if executor_hint(settings) == "ray":
        from .ray import RayExecutor

        # joined at once (overlapping the imports and pre-flight) at the address asked for; a validated
        # address that differs from this early reading is reported by the executor
        return RayExecutor(ray_address_hint(settings), early=True)
    if jobs_hint(settings) > 1:
        return ProcessExecutor(argv, jobs_hint(settings))
    return LocalExecutor()
