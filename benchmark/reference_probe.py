"""The linear probe as the authors' code fits it (`train.probe: reference`), and where its fits go.

The fit: a multinomial logistic regression on L2-normalised features, trained full batch (the whole
split is one batch) with AdamW at its defaults (betas 0.9/0.999, eps 1e-8, weight decay 0.01) for
1,000 steps from nn.Linear's initialisation (uniform in +-1/sqrt(D) for weights and biases). The
learning rate is chosen from a grid (REFERENCE_LRS) by accuracy on a validation split, the smallest
rate winning ties, then the probe is refitted with the chosen rate:

- the LP metric of a dataset: the rate is chosen on the train/validation split, the probe refitted
  on the whole train split (train + validation when the validation part was carved from the train
  split; the train split alone when the dataset has a fixed validation split, EuroSAT's);
- the LP-init head of a task: fitted on the task's training split, its rate chosen on a 90/10
  split of that training split (for a carved validation split that is the train/validation split
  itself, so the head is the selection's own fit at the chosen rate).

Unlike the reference, the initialisation is drawn from a private generator seeded with
`PROBE_SEED`, so a fit is a pure function of its inputs (same features, rate and steps: same head,
whatever the run's seed or the global RNG), and evaluation never moves the RNG that training draws
from. Fits run on the evaluator's device (one GPU kernel sequence per step on CUDA).

`train.probe: sklearn` (benchmark/probe.py) is the suite's other probe: L-BFGS on standardised
features, C chosen on the validation split, no refit. It is the micro presets' choice: on a CPU,
with 500 images per dataset, it is faster and its records are what docs/expected/micro.json holds.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .probe import accuracy
from .train_settings import REFERENCE_LRS, REFERENCE_STEPS, ProbeKind, ProbeLR, ProbeSteps  # noqa: F401

REFERENCE_WEIGHT_DECAY = 0.01  # torch.optim.AdamW's default, which the reference keeps
HEAD_VAL_FRACTION = 0.1  # the 90/10 split of a task's training split that chooses its head's rate
PROBE_SEED = 0  # seeds each fit's initialisation (a private generator)




def settings_of(train: dict) -> dict | None:
    """The reference probe's settings from a run's train section, or None for the sklearn probe."""
    if train.get("probe", "sklearn") != "reference":
        return None
    return {"lr": train.get("probe_lr", list(REFERENCE_LRS)), "steps": int(train.get("probe_steps", REFERENCE_STEPS))}


def _grid(lr) -> list[float]:
    return [float(v) for v in (lr if isinstance(lr, (list, tuple)) else [lr])]


def fit(feats: torch.Tensor, labels: torch.Tensor, lr: float, n_classes: int | None = None,
        steps: int = REFERENCE_STEPS, weight_decay: float = REFERENCE_WEIGHT_DECAY, device: str = "cpu",
        seed: int = PROBE_SEED, init: tuple[torch.Tensor, torch.Tensor] | None = None
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(W [K, D], b [K]) on the CPU, acting on L2-normalised features (the suite's embeddings are unit
    norm already). `init` replaces nn.Linear's random initialisation (the hand-worked tests use zeros)."""
    x = F.normalize(feats.detach().float().to(device), dim=1)
    y = labels.detach().long().to(device)
    k = max(int(y.max()) + 1 if len(y) else 0, n_classes or 0)
    d = x.shape[1]
    if init is None:
        g = torch.Generator().manual_seed(seed)
        bound = 1.0 / math.sqrt(d)  # nn.Linear: kaiming_uniform(a=sqrt(5)) and its bias rule give this bound
        w0 = (torch.rand(k, d, generator=g) * 2 - 1) * bound
        b0 = (torch.rand(k, generator=g) * 2 - 1) * bound
    else:
        w0, b0 = init
    w = w0.detach().float().clone().to(device).requires_grad_(True)
    b = b0.detach().float().clone().to(device).requires_grad_(True)
    opt = torch.optim.AdamW([w, b], lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(F.linear(x, w, b), y).backward()
            opt.step()
    return w.detach().cpu(), b.detach().cpu()


def choose(train_x, train_y, val_x, val_y, lr, n_classes=None, steps=REFERENCE_STEPS, device="cpu"
           ) -> tuple[float, dict[float, tuple[torch.Tensor, torch.Tensor]]]:
    """(chosen rate, {rate: its fit on train}). One fit per rate; the best validation accuracy wins,
    the smallest rate on a tie (the reference scans its grid upwards and keeps strict improvements)."""
    grid = sorted(_grid(lr))
    fits = {}
    if len(grid) == 1:
        fits[grid[0]] = fit(train_x, train_y, grid[0], n_classes, steps, device=device)
        return grid[0], fits
    if val_x is None or len(val_x) == 0:
        raise ValueError("a grid of probe learning rates needs a validation split; this dataset has none "
                         "(set train.probe_lr to a single value)")
    best, best_acc = grid[0], -1.0
    for r in grid:
        fits[r] = w, b = fit(train_x, train_y, r, n_classes, steps, device=device)
        acc = accuracy(F.normalize(val_x.float(), dim=1) @ w.T + b, val_y)
        if acc > best_acc:
            best, best_acc = r, acc
    return best, fits


def metric_and_head(train_x, train_y, val_x, val_y, settings: dict, val_carved: bool, n_classes=None,
                    device="cpu") -> dict:
    """The LP metric's probe and the LP-init head of one dataset, as the reference fits them.

    `val_carved`: the validation split was cut from the train split (refit on both); False for a
    fixed validation split (refit on train alone). Returns {"metric": (W, b), "head": (W, b),
    "lr_metric": rate, "lr_head": rate}."""
    lr, steps = settings["lr"], settings["steps"]
    r_metric, fits = choose(train_x, train_y, val_x, val_y, lr, n_classes, steps, device)
    if val_carved:
        head, r_head = fits[r_metric], r_metric  # the head's 90/10 split is the train/validation split
        if val_x is not None and len(val_x):
            metric = fit(torch.cat([train_x, val_x]), torch.cat([train_y, val_y]), r_metric, n_classes, steps,
                         device=device)
        else:
            metric = head
    else:
        metric = fits[r_metric]  # the fixed validation split is not part of the train split: no refit
        if len(_grid(lr)) == 1:
            r_head = r_metric
        else:
            from .data.splits import SPLIT_SEED, train_val_split

            tr, va = train_val_split(len(train_x), HEAD_VAL_FRACTION, None, SPLIT_SEED)
            tr, va = torch.from_numpy(tr), torch.from_numpy(va)
            r_head, _ = choose(train_x[tr], train_y[tr], train_x[va], train_y[va], lr, n_classes, steps, device)
        head = fits[r_head]  # refitted on the whole training split: that fit was made above
    return {"metric": metric, "head": head, "lr_metric": r_metric, "lr_head": r_head}


def val_is_carved(name: str) -> bool:
    """Whether dataset `name`'s validation split is cut from its train split (registry `val`), which
    decides the refit; datasets the registry does not know (tests' in-memory sets) are carved."""
    from .data.registry import catalog

    e = catalog().get(name)
    return e is None or e.get("val") != "fixed"
