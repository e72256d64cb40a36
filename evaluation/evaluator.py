"""Scores a task model after a step on every dataset of the suite: task accuracy (R row), LP and ZS."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.datasets import ImageData
from benchmark.models import TaskModel
from benchmark.probe import accuracy, fit_probe
from benchmark.training import embed_all, head_init_weights


@dataclass
class SuiteEvaluator:
    """Everything fixed within a run: the suite's data, zero-shot class embeddings, the head init."""

    data: dict[str, ImageData]  # every dataset of the suite
    zs_weights: dict[str, torch.Tensor] | None  # from the original text tower; None without one
    head_init: str = "lp"
    probe_C: float = 1.0
    logit_scale: float = 100.0
    device: str = "cpu"

    def init_head(self, model: TaskModel, dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The head a task starts from, fitted on the current encoder (what HeadInitPlugin installs)."""
        d = self.data[dataset]
        emb = embed_all(model, d.x_train, device=self.device) if self.head_init == "lp" else None
        zs = self.zs_weights[dataset] if self.zs_weights else None
        return head_init_weights(self.head_init, emb, d.y_train, zs, self.logit_scale, self.probe_C)

    @torch.no_grad()
    def evaluate(self, model: TaskModel, ordering: list[str], n_trained: int) -> dict[str, list[float]]:
        """One row of R (over the ordering) and of LP and ZS (over the suite) after `n_trained` tasks.

        R[i, j] for a task not trained yet (j >= i) is the accuracy of the head it would start from now,
        so row 0 holds the heads' initialisation and FWT compares initialisations before and after
        training on earlier tasks.
        """
        lp, zs, emb_test, probes = {}, {}, {}, {}
        for name, d in self.data.items():
            tr = embed_all(model, d.x_train, device=self.device)
            te = embed_all(model, d.x_test, device=self.device)
            w, b = fit_probe(tr, d.y_train, C=self.probe_C)
            probes[name], emb_test[name] = (w, b), te
            lp[name] = accuracy(te @ w.T + b, d.y_test)
            if self.zs_weights:
                zs[name] = accuracy(te @ self.zs_weights[name].T, d.y_test)
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
