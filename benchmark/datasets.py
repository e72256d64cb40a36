"""Datasets of the evaluation suite: names, class names, prompts, and image tensors.

Class names and prompt templates are data (`assets/datasets.json`); the micro suite's images are
embedded arrays (`assets/micro/*.npz`, provenance in `assets/micro/README.md`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ASSETS = Path(__file__).resolve().parent / "assets"
MICRO_DIR = ASSETS / "micro"


@lru_cache(maxsize=None)
def catalog() -> dict[str, dict]:
    """name -> metadata (kind, title, classnames, templates) of every dataset the suite knows."""
    with open(ASSETS / "datasets.json") as f:
        return json.load(f)


def known_datasets() -> list[str]:
    return sorted(catalog())


@dataclass
class ImageData:
    """One dataset, preprocessed for a model: normalised float images [N, 3, S, S] and labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classnames: list[str]
    templates: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.classnames)


def load_arrays(name: str, root: Path = MICRO_DIR) -> dict[str, np.ndarray]:
    """The raw uint8 arrays of a micro dataset."""
    if name not in catalog():
        raise KeyError(name)
    with np.load(root / f"{name}.npz") as z:
        return {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}


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


def to_model_input(x: np.ndarray, size: int, mean, std) -> torch.Tensor:
    """uint8 [N, H, W] (grayscale) or [N, H, W, 3] -> normalised float [N, 3, size, size]."""
    t = torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)
    t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    if t.shape[-1] != size or t.shape[-2] != size:
        t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return ((t - m) / s).contiguous()


def load_dataset(name: str, size: int, mean, std, max_train: int | None = None,
                 max_test: int | None = None) -> ImageData:
    """A dataset of the suite, resized and normalised for a model's input."""
    meta = catalog()[name]
    if meta["kind"] != "micro":
        raise NotImplementedError(f"dataset {name!r} of kind {meta['kind']!r} has no loader yet")
    a = load_arrays(name)
    tr = balanced_subset(a["y_train"], max_train)
    te = balanced_subset(a["y_test"], max_test)
    return ImageData(
        name=name,
        x_train=to_model_input(a["x_train"][tr], size, mean, std),
        y_train=torch.from_numpy(a["y_train"][tr]).long(),
        x_test=to_model_input(a["x_test"][te], size, mean, std),
        y_test=torch.from_numpy(a["y_test"][te]).long(),
        classnames=list(meta["classnames"]),
        templates=list(meta["templates"]),
    )
