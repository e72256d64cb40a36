"""Which model of a task is scored (`train.checkpoint`): the end of the task, or one of the reference's
100 checkpoints.

The authors' training loop saves the model every floor(S / 100) steps of a task of S steps (after the
optimiser step of each step s with s % floor(S / 100) == 0, so checkpoint K holds the model after
K * floor(S / 100) + 1 steps), plus the model at the end; their evaluation script scores the checkpoint
whose index K (0..100, its help says) it is given. It cannot load the end-of-training model, so K = 100
is the nearest it scores: K * floor(S / 100) + 1 steps, within the last 1-3% of the schedule (where the
learning rate is almost 0), or the end itself when S is a multiple of 100 (where the reference has no
checkpoint 100 and the end is the closest model). `checkpoint: end` (the default) scores the model at
the end of each task; `checkpoint: K` scores checkpoint K of each task instead. Training is the same either way: the
next task starts from the end of this one, as the reference's sequences do (its finetune.py passes the
final model on).
"""
from __future__ import annotations

import contextlib
import copy

import torch
from avalanche.core import SupervisedPlugin

from .train_settings import N_CHECKPOINTS, Checkpoint  # noqa: F401 - declared with the train section


def checkpoint_step(index: int, total_steps: int) -> int:
    """How many optimiser steps of a task checkpoint `index` has seen: index * floor(S / 100) + 1, at most
    S (checkpoint 100 of a task whose S is a multiple of 100 is its end). A task of fewer than 100 steps
    (where the reference's interval would be 0) saves after every step."""
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
