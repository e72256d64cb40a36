"""LP-FT: linear probing, then fine-tuning (Kumar et al., ICLR 2022).

In each task the first `probe_epochs` epochs train the task's head alone, the encoder frozen (no
gradient, and in eval mode so that no BatchNorm statistic or dropout mask changes it); the
remaining epochs of the task (train.epochs - probe_epochs) fine-tune everything, with a fresh
optimiser and a fresh warm-up + cosine schedule over those epochs: LP-FT's fine-tuning is a new run
started from the probed model. (Continuing the task's schedule instead starts the encoder's
training near the peak learning rate with empty Adam moments, whose first steps move every weight by
about the learning rate: on the micro preset that collapsed every run to chance.) With
probe_epochs >= train.epochs a task is linear probing only.
"""
from __future__ import annotations

from dataclasses import dataclass

from avalanche.core import SupervisedPlugin

from benchmark.training import WarmupCosinePlugin

from . import Strategy, register


class LPFTPlugin(SupervisedPlugin):
    """Freezes the encoder for the first `probe_epochs` epochs of every task."""

    def __init__(self, probe_epochs: int):
        super().__init__()
        self.probe_epochs = probe_epochs
        self._trainable: list | None = None  # encoder parameters this plugin froze, to unfreeze

    def before_training_epoch(self, strategy, **kwargs):
        encoder = strategy.model.encoder
        if strategy.clock.train_exp_epochs < self.probe_epochs:
            if self._trainable is None:
                self._trainable = [p for p in encoder.parameters() if p.requires_grad]
                for p in self._trainable:
                    p.requires_grad_(False)
            encoder.eval()
        elif self._trainable is not None:  # the first fine-tuning epoch of the task
            self._unfreeze(strategy)
            remaining = strategy.train_epochs - strategy.clock.train_exp_epochs
            for p in strategy.plugins:
                if isinstance(p, WarmupCosinePlugin):
                    p.restart(strategy, remaining)

    def after_training_exp(self, strategy, **kwargs):
        self._unfreeze(strategy)  # a task that was all probing: the next one starts the same way

    def _unfreeze(self, strategy):
        if self._trainable is not None:
            for p in self._trainable:
                p.requires_grad_(True)
            self._trainable = None
            strategy.model.train()  # TaskModel.train keeps BatchNorm statistics frozen where asked


@register("lp_ft")
@dataclass
class LPFT(Strategy):
    """Per task: train the head alone on the frozen encoder, then fine-tune everything (LP-FT)."""

    probe_epochs: int = 1  # epochs at the start of each task that train the head only

    def validate(self) -> None:
        if isinstance(self.probe_epochs, bool) or not isinstance(self.probe_epochs, int) or not 0 <= self.probe_epochs <= 10_000:
            raise ValueError(f"probe_epochs must be an integer in 0..10000, got {self.probe_epochs!r}")

    def plugins(self, model):
        return [LPFTPlugin(self.probe_epochs)]
