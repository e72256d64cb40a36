"""EWC: Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017), over the image encoder.

    loss = cross_entropy + lam * sum_k F_k * (w_k - w*_k)^2

w* are the encoder's weights after a finished task and F their importance: Avalanche's empirical
Fisher (mean over the finished task's training mini-batches of the squared gradient of the
cross-entropy). "separate" keeps one (F, w*) per finished task; "online" keeps one, with
F <- decay * F + F_new (Schwarz et al., 2018).

Avalanche's EWCPlugin is reused for the Fisher pass and the penalty, but it takes every parameter
of the model, heads included. In this task-incremental model an old task's head is never used
again by the cross-entropy, so its importance is the only force on it: the penalty's (zero) gradient
makes AdamW's weight decay act on heads that plain fine-tuning leaves untouched, and the heads'
Fisher says nothing about shared features. So the importances and anchors are kept for the
encoder's trainable parameters only, as the issue and the paper's continual baselines define EWC.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from avalanche.training.plugins import EWCPlugin
from avalanche.training.utils import copy_params_dict

from . import Strategy, check_range, LAM_MAX, register
from .base import PenaltyReporter

MODES = ("separate", "online")


class EncoderEWCPlugin(PenaltyReporter, EWCPlugin):
    """Avalanche's EWC with importances and anchors restricted to the encoder's trainable weights."""

    def before_backward(self, strategy, **kwargs):
        """Avalanche adds lam * penalty to the loss; the difference is reported (PenaltyReporter)."""
        if strategy.clock.train_exp_counter == 0:
            return  # no finished task: no penalty
        before = strategy.loss.detach().clone()  # Avalanche adds in place
        super().before_backward(strategy, **kwargs)
        if self.ewc_lambda > 0:
            self.note_penalty(strategy, "ewc", self.ewc_lambda, (strategy.loss.detach() - before) / self.ewc_lambda)

    def after_training_exp(self, strategy, **kwargs):
        t = strategy.clock.train_exp_counter
        model = strategy.model
        # The Fisher pass's DataLoader draws a seed from the global generator; forking it keeps the
        # next tasks' batches those of plain fine-tuning, so lam = 0 reproduces ft exactly.
        with torch.random.fork_rng(devices=[]):
            importances = self.compute_importances(model, strategy._criterion, strategy.optimizer,
                                                   strategy.experience.dataset, strategy.device,
                                                   strategy.train_mb_size, num_workers=kwargs.get("num_workers", 0))
        keep = {f"encoder.{n}" for n, p in model.encoder.named_parameters() if p.requires_grad}
        self.update_importances({k: v for k, v in importances.items() if k in keep}, t)
        # the penalty (Avalanche's before_backward) skips every parameter that has no saved anchor
        self.saved_params[t] = {k: v for k, v in copy_params_dict(model).items() if k in keep}
        if t > 0 and not self.keep_importance_data:
            del self.saved_params[t - 1]
        # The Fisher pass leaves gradients in .grad; the next step must start from none.
        strategy.optimizer.zero_grad()


@register("ewc")
@dataclass
class EWC(Strategy):
    """Fine-tune with Elastic Weight Consolidation on the encoder (Fisher of each finished task)."""

    # weight of the Fisher-weighted squared distance; the empirical Fisher is small (on the micro model
    # lam <= 1e3 changes nothing, 1e4 does, 1e5 and 1e7 act alike), so sweep it per model
    lam: float = 1e4
    mode: str = "separate"  # "separate": one penalty per finished task; "online": one, decayed running Fisher
    decay: float = 1.0  # online mode only: F <- decay * F + F_new (1 = plain sum)

    def validate(self) -> None:
        check_range("lam", self.lam, lo=0)
        check_range("lam", self.lam, hi=LAM_MAX)  # beyond it a float32 loss overflows
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        check_range("decay", self.decay, lo=0, hi=1)
        if self.mode == "separate" and self.decay != 1.0:
            # one computation must have one run id: decay does nothing in separate mode
            raise ValueError("decay applies only with mode=online; drop it or set mode=online")

    def plugins(self, model):
        decay = self.decay if self.mode == "online" else None
        return [EncoderEWCPlugin(self.lam, mode=self.mode, decay_factor=decay)]
