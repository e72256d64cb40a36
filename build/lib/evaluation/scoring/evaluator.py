"""Scores a task model after a step on every dataset of the suite: task accuracy (R row), LP and ZS.

LP as the authors fit it: a logistic-regression probe on the train split's features, C chosen on the
validation split when `probe_C` is a grid, accuracy on the test split. Features of the pre-trained
encoder (step 0) go through an on-disk cache shared by runs, strategies and processes.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from benchmark import numerics
from benchmark.data import FeatureCache, TaskData
from benchmark.models import TaskModel
from benchmark import reference_probe
from benchmark.probe import accuracy, embed_all, head_init_weights, select_probe
from benchmark.profiling import phase


def encoder_state(model: TaskModel) -> tuple:
    """Changes whenever any weight or buffer of the encoder changes (optimiser steps and BatchNorm
    updates are in-place and bump the tensors' version counters)."""
    return tuple((id(t), t._version) for t in (*model.encoder.parameters(), *model.encoder.buffers()))


@dataclass
class SuiteEvaluator:
    """Everything fixed within a run: the suite's data, zero-shot class embeddings, the head init."""

    data: dict[str, TaskData]  # every dataset of the suite
    zs_weights: dict[str, torch.Tensor] | None  # from the original text tower; None without one
    head_init: str = "lp"
    probe_C: float | list = 1.0  # one C, or a grid chosen on the validation split
    # The reference probe's settings (benchmark/reference_probe.settings_of); None: the sklearn probe
    probe: dict | None = None
    logit_scale: float = 100.0
    device: str = "cpu"
    # Scores of the pre-trained encoder, shared by the runs of a process that use the same model, data
    # and probe settings (the caller keys it): step 0 is then computed once, not once per run.
    step0_cache: dict | None = None
    # On-disk cache of the pre-trained encoder's features, keyed with `model_key` (its weights' hash), the
    # data, the device type, the precision and the CPU's numeric path (benchmark/numerics.py).
    features: FeatureCache | None = None
    model_key: str | None = None
    num_workers: int = 0
    precision: str = "fp32"
    # Called with a dataset's name after its scores are computed (the runner's progress bar).
    on_dataset: Callable[[str], None] | None = field(default=None, repr=False)
    _probes: tuple | None = field(default=None, init=False, repr=False)  # (encoder_state, {dataset: (W, b)})

    def _embed(self, model: TaskModel, ds, pretrained: bool) -> torch.Tensor:
        def compute():
            return embed_all(model, ds, device=self.device, num_workers=self.num_workers, precision=self.precision)

        if not (pretrained and self.features is not None and self.model_key):
            return compute()
        key = {"model": self.model_key, "data": ds.fingerprint, "device": torch.device(self.device).type,
               "precision": self.precision, "torch": torch.__version__,
               "numerics": numerics.fingerprint(),  # the CPU's kernels: another machine's floats are a miss
               "threads": torch.get_num_threads(),  # the thread count splits the convolutions' sums: another's floats
               "channels_last": bool(getattr(model, "channels_last", False))}  # the layout changes the floats
        gpu = numerics.accelerator(self.device)
        if gpu is not None:  # another card or CUDA/cuDNN version computes other floats (CPU keys unchanged)
            key["accelerator"] = gpu
        return self.features.get(key, compute)

    def init_head(self, model: TaskModel, dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The head a task starts from, fitted on the current encoder (what HeadInitPlugin installs).

        The probe of the last evaluation is reused when the encoder has not changed since: it is the
        same fit on the same features."""
        d = self.data[dataset]
        zs = self.zs_weights[dataset] if self.zs_weights else None
        if self.head_init == "lp" and self._probes and self._probes[0] == encoder_state(model):
            w, b = self._probes[1][dataset]
            return w.clone(), b.clone()
        tr = va = None
        with phase("head init (probe fit)"):
            if self.head_init == "lp":
                tr = self._embed(model, d.train_eval, False)
                va = self._embed(model, d.val, False) if self._needs_val(d) else None
                if self.probe is not None:
                    return self._reference_fits(dataset, d, tr, va)["head"]
            return head_init_weights(self.head_init, tr, d.train_eval.targets, zs, self.logit_scale, self.probe_C,
                                     va, d.val.targets if d.val is not None else None, n_classes=d.n_classes)

    def _suite_scores(self, model: TaskModel, pretrained: bool) -> dict:
        lp, zs, emb_test, probes, init_acc = {}, {}, {}, {}, {}
        # Step 0 is one phase of its own (the caller's); after training, embeddings and probe fits are
        # timed apart, the two costs of evaluation that scale differently (images vs classes x dims).
        def timed(name: str):
            return contextlib.nullcontext() if pretrained else phase(name)

        for name, d in self.data.items():
            with timed("evaluation: embeddings"):
                tr = self._embed(model, d.train_eval, pretrained)
                te = self._embed(model, d.test, pretrained)
                va = yv = None
                if self._needs_val(d):
                    va, yv = self._embed(model, d.val, pretrained), d.val.targets
            with timed("evaluation: probe fits"):
                if self.probe is None:
                    w, b, _ = select_probe(tr, d.train_eval.targets, va, yv, self.probe_C, n_classes=d.n_classes)
                    head = (w, b)
                else:  # the reference's metric probe is refitted on the whole train split; its head is not
                    fits = self._reference_fits(name, d, tr, va)
                    (w, b), head = fits["metric"], fits["head"]
            probes[name], emb_test[name] = head, te
            lp[name] = accuracy(te @ w.T + b, d.test.targets)
            init_acc[name] = lp[name] if head[0] is w else accuracy(te @ head[0].T + head[1], d.test.targets)
            if self.zs_weights:
                zs[name] = accuracy(te @ self.zs_weights[name].T, d.test.targets)
            if self.on_dataset is not None:
                self.on_dataset(name)
        return {"lp": lp, "zs": zs, "emb_test": emb_test, "probes": probes, "init_acc": init_acc}

    def _needs_val(self, d: TaskData) -> bool:
        grid = _grid(self.probe_C) if self.probe is None else _grid(self.probe["lr"])
        return d.val is not None and (len(grid) > 1 or self.probe is not None)

    def _reference_fits(self, name: str, d: TaskData, tr: torch.Tensor, va: torch.Tensor | None) -> dict:
        return reference_probe.metric_and_head(
            tr, d.train_eval.targets, va, d.val.targets if va is not None else None, self.probe,
            reference_probe.val_is_carved(name), n_classes=d.n_classes, device=self.device)

    @torch.no_grad()
    def evaluate(self, model: TaskModel, ordering: list[str], n_trained: int) -> dict[str, list[float]]:
        """One row of R (over the ordering) and of LP and ZS (over the suite) after `n_trained` tasks.

        R[i, j] for a task not trained yet (j >= i) is the accuracy of the head it would start from now,
        so row 0 holds the heads' initialisation and FWT compares initialisations before and after
        training on earlier tasks.
        """
        if n_trained == 0 and self.step0_cache is not None:
            if "scores" not in self.step0_cache:
                self.step0_cache["scores"] = self._suite_scores(model, pretrained=True)
            scores = self.step0_cache["scores"]
        else:
            scores = self._suite_scores(model, pretrained=n_trained == 0)
        self._probes = (encoder_state(model), scores["probes"])
        lp, zs, emb_test = scores["lp"], scores["zs"], scores["emb_test"]
        row = []
        for j, name in enumerate(ordering):
            te, y = emb_test[name], self.data[name].test.targets
            if j < n_trained:
                head = model.head(j)
                row.append(accuracy(te @ head.weight.detach().cpu().T + head.bias.detach().cpu(), y))
            elif self.head_init == "lp":
                row.append(scores["init_acc"][name])  # the LP-init head (the sklearn probe: the LP probe itself)
            else:
                row.append(zs[name])  # ZS-init: scaling the logits leaves the argmax unchanged
        suite = list(self.data)
        return {"R": row, "LP": [lp[n] for n in suite], "ZS": [zs[n] for n in suite] if zs else None}


def _grid(C) -> list:
    return C if isinstance(C, (list, tuple)) else [C]
