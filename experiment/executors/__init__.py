"""Executors: how a plan's pending runs are trained (base.Executor).

- `local`: one process, runs one after another (the default);
- `processes`: `--jobs N` processes on this host that share out the runs.
"""
from __future__ import annotations

from .base import Executor, Job

__all__ = ["Executor", "Job"]
