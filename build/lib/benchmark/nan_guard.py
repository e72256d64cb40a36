"""Stop a run the moment its training goes numerically wrong, instead of training on NaN weights
and failing later inside a probe (sklearn: "does not accept missing values encoded as NaN").

The guard checks the loss before every backward pass and the weights after every task. The
executor catches NonFiniteError, records the run as failed (not done) and goes on with the plan.
"""
from __future__ import annotations

import math

import torch
from avalanche.core import SupervisedPlugin

LIKELY_CAUSE = ("likely cause: a learning rate or strategy hyperparameter too extreme for this model "
                "(train.lr, lam, temperature), or reduced precision overflowing")


class NonFiniteError(RuntimeError):
    """Training produced NaN or infinity; the message says where (task, epoch, iteration) and why."""


class NonFiniteGuard(SupervisedPlugin):
    def before_backward(self, strategy, *args, **kwargs):
        loss = strategy.loss
        value = float(loss.detach()) if torch.is_tensor(loss) and loss.numel() == 1 else None
        if value is not None and not math.isfinite(value):
            raise NonFiniteError(f"the training loss became {value} at task {strategy.experience.current_experience + 1}, "
                                 f"epoch {strategy.clock.train_exp_epochs + 1}, iteration "
                                 f"{strategy.clock.train_epoch_iterations + 1}; {LIKELY_CAUSE}")

    def after_training_exp(self, strategy, *args, **kwargs):
        for name, p in strategy.model.named_parameters():
            if not torch.isfinite(p).all():
                raise NonFiniteError(f"the weight {name} holds NaN or infinity after task "
                                     f"{strategy.experience.current_experience + 1}; {LIKELY_CAUSE}")
