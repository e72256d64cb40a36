"""The training protocol shared by every strategy: Avalanche's template plus protocol plugins.

Strategies add their own plugins (strategies/); this module never names a strategy.
"""
from __future__ import annotations

import math
import sys
import time

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from .models import TaskModel
from .nan_guard import NonFiniteGuard
from .precision import autocast
from .train_settings import TrainConfig  # noqa: F401 - the train section, declared without torch


class HeadInitPlugin(SupervisedPlugin):
    """Initialises the new task's head (LP or ZS) on the current encoder, before training on the task."""

    def __init__(self, init_fn):
        super().__init__()
        self.init_fn = init_fn  # (model, task_label) -> (W, b)

    def before_training_exp(self, strategy, **kwargs):
        t = strategy.experience.task_label
        w, b = self.init_fn(strategy.model, t)
        head = strategy.model.head(t)
        if head.weight.shape != w.shape:
            raise RuntimeError(f"head of task {t} has shape {tuple(head.weight.shape)}, init gives {tuple(w.shape)}")
        with torch.no_grad():
            head.weight.copy_(w.to(head.weight.device))
            head.bias.copy_(b.to(head.bias.device))


class WarmupCosinePlugin(SupervisedPlugin):
    """Linear warm-up then cosine decay to 0, per iteration, restarted at each task (paper protocol)."""

    def __init__(self, warmup_steps: int):
        super().__init__()
        self.warmup = warmup_steps
        self.sched = None

    def before_training_exp(self, strategy, **kwargs):
        # `train.lr` per dataset and `train.iterations`: the runner sets them on the template before each task
        lr, self.budget, self.done = getattr(strategy, "task_lr", None), getattr(strategy, "task_iterations", None), 0
        if lr is not None:
            for g in strategy.optimizer.param_groups:
                g["initial_lr"] = g["lr"] = float(lr)
        strategy._stop_training = False  # Avalanche keeps a stop asked for at the very end of the last task
        if self.budget:
            strategy.train_epochs = math.ceil(self.budget / max(1, len(strategy.dataloader)))
        self.restart(strategy, strategy.train_epochs, steps=self.budget)

    def restart(self, strategy, epochs: int, steps: int | None = None) -> None:
        """A fresh optimiser and schedule (warm-up, then cosine) over the next `epochs` epochs (or exactly
        `steps` steps). Each task starts so, as the reference trains each task with a new optimiser; a
        strategy with phases inside a task (LP-FT) restarts it for a phase."""
        strategy.optimizer.state.clear()
        total = max(1, steps or epochs * len(strategy.dataloader))
        warm = min(self.warmup, total - 1)

        def factor(step):
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

        for g in strategy.optimizer.param_groups:
            g["lr"] = g.setdefault("initial_lr", g["lr"])
        self.sched = torch.optim.lr_scheduler.LambdaLR(strategy.optimizer, factor)

    def after_training_iteration(self, strategy, **kwargs):
        self.sched.step()
        self.done = getattr(self, "done", 0) + 1
        if getattr(self, "budget", None) and self.done >= self.budget:  # train.iterations: the task's last step
            strategy.stop_training()


class GradClipPlugin(SupervisedPlugin):
    def __init__(self, max_norm: float):
        super().__init__()
        self.max_norm = max_norm

    def after_backward(self, strategy, **kwargs):
        torch.nn.utils.clip_grad_norm_(strategy.model.parameters(), self.max_norm)


class PrecisionPlugin(SupervisedPlugin):
    """Runs the model's forward passes under bf16 autocast (`train.precision: bf16`); the loss, the
    optimiser state and the weights stay float32."""

    def __init__(self, device: str):
        super().__init__()
        self.device, self._ctx = device, None

    def before_forward(self, strategy, **kwargs):
        self._ctx = autocast(self.device, "bf16")
        self._ctx.__enter__()

    def after_forward(self, strategy, **kwargs):
        self._ctx.__exit__(None, None, None)
        strategy.mb_output = strategy.mb_output.float()

    before_eval_forward, after_eval_forward = before_forward, after_forward


def per_dataset(value, dataset: str, key: str):
    """A setting given as one value for every task or as a mapping dataset -> value (`train.lr`,
    `train.iterations`); None stays None."""
    if isinstance(value, dict):
        if dataset not in value:
            raise ValueError(f"train.{key} gives no value for {dataset}; it has {', '.join(sorted(value))}")
        return value[dataset]
    return value


def epochs_for(epochs, dataset: str) -> int:
    """`train.epochs` is one number for every task or a mapping dataset -> epochs (paper presets)."""
    if isinstance(epochs, dict):
        if dataset not in epochs:
            raise ValueError(f"train.epochs gives no epoch count for {dataset}; it has {', '.join(sorted(epochs))}")
        return int(epochs[dataset])
    return int(epochs)


class ProgressPlugin(SupervisedPlugin):
    """One line per epoch: where the run is, the mean loss, the time; with `bar`, also a tqdm bar over
    the epoch's iterations (rate and ETA) that disappears when the epoch ends."""

    def __init__(self, prefix: str, stream=sys.stderr, bar: bool = False):
        super().__init__()
        self.prefix, self.stream, self.bar = prefix, stream, bar
        self._bar = None
        self._epoch_losses: list[float | None] = []

    def take_losses(self) -> list[float | None]:
        """The mean training loss of each epoch since the last call (one task), None where not finite."""
        out, self._epoch_losses = self._epoch_losses, []
        return out

    def before_training_epoch(self, strategy, **kwargs):
        self._t, self._loss, self._n = time.time(), 0.0, 0
        if self.bar:
            from tqdm import tqdm

            e = strategy.clock.train_exp_epochs + 1
            self._bar = tqdm(total=len(strategy.dataloader), unit="it", leave=False, position=1, file=sys.stderr,
                             desc=f"task {strategy.experience.current_experience + 1} epoch {e}/{strategy.train_epochs}")

    def after_training_iteration(self, strategy, **kwargs):
        self._loss += strategy.loss.item() * len(strategy.mb_y)
        self._n += len(strategy.mb_y)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{self._loss / self._n:.3f}", refresh=False)
            self._bar.update(1)

    def after_training_epoch(self, strategy, **kwargs):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        e = strategy.clock.train_exp_epochs + 1
        mean = self._loss / max(1, self._n)
        self._epoch_losses.append(mean if math.isfinite(mean) else None)
        print(f"{self.prefix} task {strategy.experience.current_experience + 1}: epoch {e}/{strategy.train_epochs} "
              f"loss {self._loss / max(1, self._n):.4f} ({time.time() - self._t:.1f}s)", file=self.stream, flush=True)


def compile_encoder(model: TaskModel, mode: str) -> None:
    """`train.compile`: compile the encoder's forward in place with torch.compile (its module, hooks and
    state dict stay what they were, so feature taps and anchors see the same module). "off": nothing."""
    if mode == "off":
        return
    model.encoder.compile(**({} if mode == "default" else {"mode": mode}))


def fused_if_available(device: str) -> dict:
    """AdamW's fused kernel where torch has one for the device (CPU and CUDA): one pass over all
    parameters instead of a loop of small ops; on the micro model it cut the optimiser step 4x."""
    return {"fused": True} if torch.device(device).type in ("cpu", "cuda") else {}


def make_template(model: TaskModel, cfg: TrainConfig, plugins: list, device: str,
                  tensorboard_dir=None) -> SupervisedTemplate:
    """Avalanche's supervised template (Naive when `plugins` holds no strategy plugin).

    Scores come from evaluation/, after every task, so Avalanche's evaluator is empty unless
    `tensorboard_dir` is given: then it logs the training loss per mini-batch and per epoch (the loss
    curves the record files do not keep) through Avalanche's TensorboardLogger."""
    params = [p for p in model.parameters() if p.requires_grad]
    lr = cfg.lr if not isinstance(cfg.lr, dict) else next(iter(cfg.lr.values()))  # per dataset: set before each task
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay, **fused_if_available(device))
    proto = [WarmupCosinePlugin(cfg.warmup_steps)]
    if cfg.grad_clip > 0:
        proto.append(GradClipPlugin(cfg.grad_clip))
    bf16 = getattr(cfg, "precision", "fp32") == "bf16"
    if bf16:
        proto.append(PrecisionPlugin(device))
    epochs = cfg.epochs if isinstance(cfg.epochs, int) else 1  # per-dataset counts are set before each task
    if tensorboard_dir is not None:
        from avalanche.evaluation.metrics import loss_metrics
        from avalanche.logging import TensorboardLogger

        evaluator = EvaluationPlugin(loss_metrics(minibatch=True, epoch=True),
                                     loggers=[TensorboardLogger(tb_log_dir=tensorboard_dir)])
    else:
        evaluator = EvaluationPlugin(loggers=[])
    template = SupervisedTemplate(
        model=model, optimizer=optimizer, train_mb_size=cfg.batch_size,
        criterion=nn.CrossEntropyLoss(label_smoothing=getattr(cfg, "label_smoothing", 0.0)),
        train_epochs=epochs, eval_mb_size=256, device=device,
        plugins=proto + list(plugins) + [NonFiniteGuard()],  # last: it sees the loss every plugin has added to
        evaluator=evaluator,
    )
    # The context a strategy runs its frozen forward passes in (LDIFS's anchor): bf16 autocast with
    # `anchor_autocast`, else full precision (those passes come after the model's autocast has closed).
    anchor_bf16 = bf16 and getattr(cfg, "anchor_autocast", False)
    template.frozen_forward_context = lambda: autocast(device, "bf16" if anchor_bf16 else "fp32")
    return template
