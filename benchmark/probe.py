"""Linear probes on frozen features: the LP metric and the LP-init head are the same fit."""
from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression


def fit_probe(feats: torch.Tensor, labels: torch.Tensor, C: float = 1.0, max_iter: int = 1000
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression on standardised features, returned as (W [K, D], b [K]) that
    act on the raw features (the standardisation is folded in), so it drops into an nn.Linear head."""
    x = feats.double().cpu().numpy()
    y = labels.cpu().numpy()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=C, max_iter=max_iter)
        clf.fit((x - mu) / sd, y)
    n_classes = int(y.max()) + 1
    w = np.zeros((n_classes, x.shape[1]))
    b = np.full(n_classes, -1e4)  # a class absent from the train split can never be predicted
    coef, icpt = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # sklearn stores one row for binary problems
        coef, icpt = np.vstack([-coef / 2, coef / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
    w[clf.classes_] = coef / sd
    b[clf.classes_] = icpt - (coef / sd) @ mu
    return torch.from_numpy(w).float(), torch.from_numpy(b).float()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of correct top-1 predictions, as an exact ratio of counts (no float32 rounding)."""
    return int((logits.argmax(1) == labels).sum()) / max(1, len(labels))
