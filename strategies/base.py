"""What every strategy is: a small dataclass of hyperparameters that returns Avalanche plugins."""
from __future__ import annotations

from typing import ClassVar

from avalanche.core import SupervisedPlugin
from torch import nn


class Strategy:
    """Base of all strategies. Plain fine-tuning is a strategy with no plugins."""

    name: ClassVar[str] = ""

    def validate(self) -> None:
        """Raise ValueError with an actionable message if a hyperparameter is out of range."""

    def plugins(self, model: nn.Module) -> list[SupervisedPlugin]:
        """The Avalanche plugins that turn the training template into this strategy. Raise
        strategies.SpecError for hyperparameters that do not fit this model."""
        return []
