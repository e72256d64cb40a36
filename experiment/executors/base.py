"""The executor interface: how the pending runs of a plan get trained.

Every executor trains each pending run exactly once through `experiment.runner.execute_run`, under
that run's lock (evaluation.storage.records.RunLock), so that executors, processes and commands working on
one experiment split its runs between them and never train one twice. The record files, done
markers and locks are the only state; an executor adds none.
"""
from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass
class Job:
    """What every run of one command shares: where results go, the loaded resources, and how to report."""

    exp_dir: Path
    resources: Any  # experiment.runner.Resources of this process
    log: TextIO = field(default_factory=lambda: sys.stderr)
    bars: bool = False  # progress bars on a terminal
    tensorboard: bool = False  # Avalanche's TensorBoard logger per run, and the evaluation (experiment/trackers.py)
    wandb: bool = False  # one Weights & Biases run per run (experiment/trackers.py), files in <exp_dir>/wandb
    save_weights: bool = False  # keep each run's scored encoder and heads after every task (`save_weights`)
    jobs: int = 1  # processes the configuration asks for (`jobs`, --jobs), validated
    executor: dict = field(default_factory=dict)  # the config's `executor` section (kind, address, ...)


class Executor(ABC):
    """Trains a plan's pending runs. `start` may begin work before the configuration is checked (a
    process executor starts its helpers then, so that their imports overlap this process's); `close`
    is called on every way out and stops whatever has not been told to train."""

    #: processes that trained (for the peak-memory line), known after `execute`
    processes: int = 1

    def start(self, jobs: int = 1, left: list[dict] | None = None, settings: dict | None = None) -> None:
        """Called once, after the configuration is validated (`jobs`: its number of processes; `left`: the
        runs of the plan left to train, None where not known; `settings`: the config's `executor` section)
        and before the plan is trained; must not train or write anything."""

    def refusal(self, settings: dict) -> str | None:
        """Why this executor can train no run of the plan (`settings`: the config's `executor` section),
        e.g. no Ray cluster at the address asked for, or no node with the resources a run reserves; asked
        before the pre-flight loads the model and the data, so that the command says it in one line at
        once. None: nothing against it (`execute` refuses the same way, in one line, if asked anyway)."""
        return None

    @abstractmethod
    def execute(self, todo: list[dict], job: Job) -> int:
        """Train every run of `todo` (run configs of the plan, with their ids) that no other process
        has done or is doing. Return the exit code: 0 when all of them are done."""

    def close(self) -> None:
        """Release or stop what `start` began and `execute` did not use (idempotent)."""
