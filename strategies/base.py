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
