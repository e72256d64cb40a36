"""Executors: how a plan's pending runs are trained (base.Executor).

- `local`: one process, runs one after another (the default);
- `processes`: `--jobs N` processes on this host that share out the runs;
- `ray`: Ray tasks on a Ray cluster (`--executor ray`); the driver writes what workers return.
"""
from __future__ import annotations

from .base import Executor, Job

__all__ = ["Executor", "Job"]
