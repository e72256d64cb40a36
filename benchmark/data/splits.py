"""Split rules of docs/design.md: official test split; train split 90/10 train/validation with seed 0
(validation capped); fixed fractions of one pool (EuroSAT: 21,600 / 2,700 / 2,700)."""
from __future__ import annotations

import numpy as np
import torch

SPLIT_SEED = 0


def train_val_split(n: int, val_fraction: float, val_cap: int | None, seed: int = SPLIT_SEED
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices) of a train split of n items.

    The same permutation as `torch.utils.data.random_split(range(n), [n - v, v], generator seeded
    with `seed`)`, which is how the reference code carves its validation split: v = int(n * fraction),
    capped at val_cap.
    """
    v = int(n * val_fraction)
    if val_cap is not None:
        v = min(v, int(val_cap))
    if val_fraction > 0 and n > 1:
        v = max(v, 1)  # a tiny split (a fixture, a subset) still gets one validation item
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(perm[:n - v]), np.sort(perm[n - v:])


def fixed_split(n: int, fractions: dict[str, float], seed: int = SPLIT_SEED, rounding: str = "round"
                ) -> dict[str, np.ndarray]:
    """Split n items into named parts of the given fractions (in the order given); the last part takes
    the remainder. EuroSAT's 27,000 images with 0.8/0.1/0.1 give exactly 21,600 / 2,700 / 2,700.

    `rounding: floor` sizes a part int(n * fraction), as `torch.utils.data.random_split(ds, [int(0.8 n),
    n - int(0.8 n)], generator seeded with seed)` does in ZSCL's code: the same permutation, the same
    parts (Caltech101's 8,677 images: 6,941 / 1,736, where rounding would give 6,942)."""
    if rounding not in ("round", "floor"):
        raise ValueError(f"fixed_split rounding must be round or floor, got {rounding!r}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    names = list(fractions)
    out, start = {}, 0
    for i, name in enumerate(names):
        share = n * fractions[name]
        size = n - start if i == len(names) - 1 else int(share if rounding == "floor" else round(share))
        out[name] = np.sort(perm[start:start + size])
        start += size
    return out


def balanced_subset(y: np.ndarray, n: int | None, seed: int = 0) -> np.ndarray:
    """Indices of n // K samples of each of the K classes (at least one each), in a fixed order that does
    not depend on the run's seed, so every run of an experiment sees the same subset."""
    if n is None or n >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per = max(1, n // len(classes))
    idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per] for c in classes])
    return np.sort(idx)
