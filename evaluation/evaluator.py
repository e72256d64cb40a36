"""Scores a task model after a step on every dataset of the suite: task accuracy (R row), LP and ZS."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from benchmark.datasets import ImageData
from benchmark.models import TaskModel
from benchmark.probe import accuracy, fit_probe
from benchmark.training import embed_all, head_init_weights


def encoder_state(model: TaskModel) -> tuple:
    """Changes whenever any weight or buffer of the encoder changes (optimiser steps and BatchNorm
    updates are in-place and bump the tensors' version counters)."""
    return tuple((id(t), t._version) for t in (*model.encoder.parameters(), *model.encoder.buffers()))


@dataclass
class SuiteEvaluator:
    """Everything fixed within a run: the suite's data, zero-shot class embeddings, the head init."""

    data: dict[str, ImageData]  # every dataset of the suite
    zs_weights: dict[str, torch.Tensor] | None  # from the original text tower; None without one
    head_init: str = "lp"
    probe_C: float = 1.0
    logit_scale: float = 100.0
    device: str = "cpu"
    # Scores of the pre-trained encoder, shared by the runs of a process that use the same model, data
    # and probe settings (the caller keys it): step 0 is then computed once, not once per run.
    step0_cache: dict | None = None
    _probes: tuple | None = field(default=None, init=False, repr=False)  # (encoder_state, {dataset: (W, b)})

    def init_head(self, model: TaskModel, dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The head a task starts from, fitted on the current encoder (what HeadInitPlugin installs).

        The probe of the last evaluation is reused when the encoder has not changed since: it is the
        same fit on the same features."""
        d = self.data[dataset]
        zs = self.zs_weights[dataset] if self.zs_weights else None
        if self.head_init == "lp" and self._probes and self._probes[0] == encoder_state(model):
            w, b = self._probes[1][dataset]
            return w.clone(), b.clone()
        emb = embed_all(model, d.x_train, device=self.device) if self.head_init == "lp" else None
        return head_init_weights(self.head_init, emb, d.y_train, zs, self.logit_scale, self.probe_C)

    def _suite_scores(self, model: TaskModel) -> dict:
        lp, zs, emb_test, probes = {}, {}, {}, {}
        for name, d in self.data.items():
            tr = embed_all(model, d.x_train, device=self.device)
            te = embed_all(model, d.x_test, device=self.device)
            w, b = fit_probe(tr, d.y_train, C=self.probe_C)
            probes[name], emb_test[name] = (w, b), te
            lp[name] = accuracy(te @ w.T + b, d.y_test)
            if self.zs_weights:
                zs[name] = accuracy(te @ self.zs_weights[name].T, d.y_test)
        return {"lp": lp, "zs": zs, "emb_test": emb_test, "probes": probes}

    @torch.no_grad()
    def evaluate(self, model: TaskModel, ordering: list[str], n_trained: int) -> dict[str, list[float]]:
        """One row of R (over the ordering) and of LP and ZS (over the suite) after `n_trained` tasks.

        R[i, j] for a task not trained yet (j >= i) is the accuracy of the head it would start from now,
        so row 0 holds the heads' initialisation and FWT compares initialisations before and after
        training on earlier tasks.
        """
        if n_trained == 0 and self.step0_cache is not None:
            if "scores" not in self.step0_cache:
                self.step0_cache["scores"] = self._suite_scores(model)
            scores = self.step0_cache["scores"]
        else:
            scores = self._suite_scores(model)
        self._probes = (encoder_state(model), scores["probes"])
        lp, zs, emb_test = scores["lp"], scores["zs"], scores["emb_test"]
        row = []
        for j, name in enumerate(ordering):
            te, y = emb_test[name], self.data[name].y_test
            if j < n_trained:
                head = model.head(j)
                row.append(accuracy(te @ head.weight.detach().cpu().T + head.bias.detach().cpu(), y))
            elif self.head_init == "lp":
                row.append(lp[name])  # the LP-init head is this very probe
            else:
                row.append(zs[name])  # ZS-init: scaling the logits leaves the argmax unchanged
        suite = list(self.data)
        return {"R": row, "LP": [lp[n] for n in suite], "ZS": [zs[n] for n in suite] if zs else None}
