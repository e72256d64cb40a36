"""What every strategy is: a small dataclass of hyperparameters that returns Avalanche plugins."""
from __future__ import annotations

import math
from typing import ClassVar

import torch
from avalanche.core import SupervisedPlugin
from torch import Tensor, nn


class Strategy:
    """Base of all strategies. Plain fine-tuning is a strategy with no plugins."""

    name: ClassVar[str] = ""

    def validate(self) -> None:
        """Raise ValueError with an actionable message if a hyperparameter is out of range."""

    def plugins(self, model: nn.Module) -> list[SupervisedPlugin]:
        """The Avalanche plugins that turn the training template into this strategy. Raise
        strategies.SpecError for hyperparameters that do not fit this model.

        Must not change `model`: the command line calls it on the shared pre-trained model to check
        every strategy before any run starts. Plugins change the run's own model in their callbacks.
        """
        return []


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise ValueError ("lam must be >= 0, got -1.0") unless lo <= value <= hi (bounds optional, open
    when asked); nan and inf are always rejected, as no run can use them."""
    if lo is not None and hi is not None:
        rule = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
        rule = f"{'>' if lo_open else '>='} {lo:g}"
    elif hi is not None:
        rule = f"{'<' if hi_open else '<='} {hi:g}"
    else:
        rule = ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number{' ' + rule if rule else ''}, got {value!r}")
    if (lo is not None and (value <= lo if lo_open else value < lo)) or \
            (hi is not None and (value >= hi if hi_open else value > hi)):
        raise ValueError(f"{name} must be {rule}, got {value!r}")


class TrainingOutput:
    """A forward hook that keeps `module`'s output of the current training step (autograd on), so that
    a plugin reuses the template's forward pass instead of running the model again; evaluation passes
    keep nothing."""

    def __init__(self, module: nn.Module):
        self.value: Tensor | None = None
        self._handle = module.register_forward_hook(self._keep)

    def _keep(self, _module, _inp, out):
        if torch.is_grad_enabled():
            self.value = out

    def take(self, who: str) -> Tensor:
        value, self.value = self.value, None
        if value is None:
            raise RuntimeError(f"{who}: the encoder did not run in this training step")
        return value

    def remove(self) -> None:
        self._handle.remove()


class PenaltyReporter:
    """Mixin for the plugins of a strategy that adds penalty terms to the loss: it adds them, and
    reports them per training step (mini-batch) to TensorBoard and per task to the run's records.

        class MyPlugin(PenaltyReporter, SupervisedPlugin):
            def before_backward(self, strategy, **kwargs):
                self.add_penalty(strategy, "my_term", self.lam, my_term(...))   # loss += lam * term

    A term added by code one does not own (Avalanche's EWC) is reported with `note_penalty` after
    the fact. With `--tensorboard`, every training step logs `penalty/<name>` (the unweighted term)
    and `penalty/<name> x <weight>` (what the loss received) at the step's iteration; after each task
    experiment/runner.py stores `penalty_summary()` in that step's record, under `penalties`:
    {name: {"weight", "mean" (unweighted, over the task's mini-batches), "weighted_mean", "last", "steps"}}.
    """

    def add_penalty(self, strategy, name: str, weight: float, term: Tensor) -> None:
        strategy.loss = strategy.loss + weight * term
        self.note_penalty(strategy, name, weight, term)

    def note_penalty(self, strategy, name: str, weight: float, term) -> None:
        value = term.detach() if isinstance(term, Tensor) else torch.as_tensor(float(term))
        acc = self.__dict__.setdefault("_penalties", {})
        total, count, _, _ = acc.get(name, (0.0, 0, weight, None))
        acc[name] = (total + value, count + 1, weight, value)  # tensors: no device sync per step
        writer = _tensorboard_writer(strategy)
        if writer is not None:
            step = int(getattr(strategy.clock, "train_iterations", 0))
            v = float(value)
            writer.add_scalar(f"penalty/{name}", v, step)
            writer.add_scalar(f"penalty/{name} x {weight:g}", weight * v, step)

    def penalty_summary(self) -> dict[str, dict[str, float]]:
        """The terms reported since the last call (one task), and forget them."""
        acc, self.__dict__["_penalties"] = self.__dict__.get("_penalties", {}), {}
        out = {}
        for name, (total, count, weight, last) in acc.items():
            mean = float(total) / count
            out[name] = {"weight": float(weight), "mean": mean, "weighted_mean": float(weight) * mean,
                         "last": float(last), "steps": count}
        return out


def _tensorboard_writer(strategy):
    for logger in getattr(getattr(strategy, "evaluator", None), "loggers", []) or []:
        if getattr(logger, "writer", None) is not None:
            return logger.writer
    return None


def penalty_summaries(plugins) -> dict[str, dict[str, float]]:
    """Every PenaltyReporter's summary among `plugins`, merged (the runner's per-task record)."""
    out = {}
    for p in plugins:
        if isinstance(p, PenaltyReporter):
            out.update(p.penalty_summary())
    return out
