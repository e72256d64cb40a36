"""Linear probes on frozen features: the LP metric and the LP-init head are the same fit, on the
embeddings `embed_all` computes.

As the authors fit them: a logistic regression on the train split's features. Its inverse
regularisation strength C is chosen on the validation split from a small grid (`train.probe_C` as a
list; PROBE_GRID is the paper presets' grid); a single value means no selection (the micro preset).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from torch.utils.data import DataLoader

from .models import TaskModel
from .precision import autocast

# Log-spaced over four decades around sklearn's default C = 1 on standardised features.
PROBE_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def fit_probe(feats: torch.Tensor, labels: torch.Tensor, C: float = 1.0, max_iter: int = 1000,
              n_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression on standardised features, returned as (W [K, D], b [K]) that
    act on the raw features (the standardisation is folded in), so it drops into an nn.Linear head."""
    x = feats.double().cpu().numpy()
    y = labels.cpu().numpy()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=C, max_iter=max_iter)
        clf.fit((x - mu) / sd, y)
    n_classes = max(int(y.max()) + 1, n_classes or 0)
    w = np.zeros((n_classes, x.shape[1]))
    b = np.full(n_classes, -1e4)  # a class absent from the train split can never be predicted
    coef, icpt = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # sklearn stores one row for binary problems
        coef, icpt = np.vstack([-coef / 2, coef / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
    w[clf.classes_] = coef / sd
    b[clf.classes_] = icpt - (coef / sd) @ mu
    return torch.from_numpy(w).float(), torch.from_numpy(b).float()


def as_grid(C) -> list[float]:
    return [float(c) for c in (C if isinstance(C, (list, tuple)) else [C])]


def select_probe(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor | None, val_y: torch.Tensor | None,
                 C, n_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(W, b, chosen C): one fit per C of the grid on train, the best validation accuracy wins (the
    smaller C on a tie, i.e. the stronger regularisation). A single C is fitted without selection."""
    grid = as_grid(C)
    if len(grid) == 1:
        return (*fit_probe(train_x, train_y, grid[0], n_classes=n_classes), grid[0])
    if val_x is None or len(val_x) == 0:
        raise ValueError("a grid of probe C values needs a validation split; this dataset has none "
                         "(set train.probe_C to a single value)")
    best = None
    for c in sorted(grid):
        w, b = fit_probe(train_x, train_y, c, n_classes=n_classes)
        acc = accuracy(val_x @ w.T + b, val_y)
        if best is None or acc > best[0]:
            best = (acc, w, b, c)
    return best[1], best[2], best[3]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of correct top-1 predictions, as an exact ratio of counts (no float32 rounding)."""
    return int((logits.argmax(1) == labels).sum()) / max(1, len(labels))


@torch.no_grad()
def embed_all(model: TaskModel, data, batch_size: int = 128, device: str = "cpu", num_workers: int = 0,
              precision: str = "fp32") -> torch.Tensor:
    """Unit-norm image embeddings (float32, on the CPU) of a Dataset of (image, label) pairs or of a
    tensor of images, in eval mode, streamed through a DataLoader."""
    was = model.training
    model.eval()
    if isinstance(data, torch.Tensor):
        batches = (data[i:i + batch_size] for i in range(0, len(data), batch_size))
    else:
        # A private generator: starting a DataLoader draws a seed from the generator it is given, and
        # evaluation (which may or may not run, depending on caches) must not move the global RNG that
        # training's shuffling and augmentation draw from.
        batches = (x for x, _ in DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                            pin_memory=str(device).startswith("cuda"),
                                            generator=torch.Generator().manual_seed(0)))
    out = []
    for x in batches:
        with autocast(device, precision):
            out.append(model.embed(x.to(device, non_blocking=True)).float().cpu())
    model.train(was)
    return torch.cat(out) if out else torch.empty(0)


def head_init_weights(mode: str, train_emb: torch.Tensor, train_y: torch.Tensor, zs_weights: torch.Tensor | None,
                      logit_scale: float, probe_C, val_emb: torch.Tensor | None = None,
                      val_y: torch.Tensor | None = None, n_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) of a task head before training on the task. "lp": probe fit (C chosen on validation when
    probe_C is a grid); "zs": scaled text embeddings."""
    if mode == "lp":
        w, b, _ = select_probe(train_emb, train_y, val_emb, val_y, probe_C, n_classes=n_classes)
        return w, b
    if mode == "zs":
        if zs_weights is None:
            raise ValueError("head_init 'zs' needs a model with an aligned text tower")
        return zs_weights * logit_scale, torch.zeros(len(zs_weights))
    raise ValueError(f"head_init must be 'lp' or 'zs', got {mode!r}")
