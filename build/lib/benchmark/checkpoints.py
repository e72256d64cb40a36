"""Which model of a task is scored (`train.checkpoint`): the end of the task, or one of the reference's
100 checkpoints.

The authors' training loop saves the model every floor(S / 100) steps of a task of S steps (after the
optimiser step of each step s with s % floor(S / 100) == 0, so checkpoint K holds the model after
K * floor(S / 100) + 1 steps), plus the model at the end; their evaluation script scores the checkpoint
whose index K (0..99) it is given. `checkpoint: end` (the default) scores the model at the end of each
task; `checkpoint: K` scores checkpoint K of each task instead. Training is the same either way: the
next task starts from the end of this one, as the reference's sequences do (its finetune.py passes the
final model on).
"""
from __future__ import annotations

import contextlib
import copy
from typing import Annotated, Any

import torch
from avalanche.core import SupervisedPlugin
from pydantic import BeforeValidator

N_CHECKPOINTS = 100  # the reference saves every floor(S / 100) steps


def _checkpoint(v):
    what = "'end', or the index 0..99 of the reference's 100 checkpoints of each task"
    if v == "end":
        return v
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < N_CHECKPOINTS:
        raise ValueError(f"input should be {what}")
    return v


# The `train` section's choice of the scored model (declared in training.TrainConfig with this type)
Checkpoint = Annotated[Any, BeforeValidator(_checkpoint)]


def checkpoint_step(index: int, total_steps: int) -> int:
    """How many optimiser steps of a task checkpoint `index` has seen: index * floor(S / 100) + 1. A task
    of fewer than 100 steps (where the reference's interval would be 0) saves after every step."""
    every = max(1, total_steps // N_CHECKPOINTS)
    return min(total_steps, index * every + 1)


class CheckpointPlugin(SupervisedPlugin):
    """Keeps a copy of the model (weights and buffers, on the CPU) at checkpoint `index` of each task;
    `scored(model)` swaps it in for the evaluation after the task and restores the end of the task."""

    def __init__(self, index: int):
        super().__init__()
        self.index, self.snapshot, self.step, self.target = index, None, 0, None

    def before_training_exp(self, strategy, **kwargs):
        total = strategy.train_epochs * len(strategy.dataloader)
        self.snapshot, self.step, self.target = None, 0, checkpoint_step(self.index, total)

    def after_training_iteration(self, strategy, **kwargs):
        self.step += 1
        if self.step == self.target:
            self.snapshot = {k: v.detach().to("cpu", copy=True) for k, v in strategy.model.state_dict().items()}

    @contextlib.contextmanager
    def scored(self, model: torch.nn.Module):
        if self.snapshot is None:  # no task trained yet (step 0)
            yield
            return
        end = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        model.load_state_dict(self.snapshot)
        try:
            yield
        finally:
            model.load_state_dict(end)


def scored_model(plugin: CheckpointPlugin | None, model: torch.nn.Module):
    """The context in which the model after a task is scored (a no-op for `checkpoint: end`)."""
    return contextlib.nullcontext() if plugin is None else plugin.scored(model)
