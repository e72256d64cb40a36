"""Feature drift: how far each layer of the encoder has moved from the pre-trained one, per dataset.

After step 0 and after every task, for every dataset of the suite (trained or held out), on a fixed
sample of its test images (`drift` images, the same for every run: drawn by a private generator with
a fixed seed, never the global RNG), at every feature tap of the encoder (benchmark/models/taps.py)
and at its output embedding:

- `ldifs`: the LDIFS distance d_l between the current and the pre-trained features, the very function
  the strategy penalises (benchmark/models/taps.ldifs_layer_distance, token-axis normalisation),
  averaged over the sample;
- `cka`: linear CKA (Kornblith et al., 2019) between the two feature matrices, each image's map
  flattened to one row: 1 when the features agree up to a rotation and an isotropic scale.

The pre-trained features go through the on-disk FeatureCache, keyed like the evaluator's (model
weights, data, sample, device, precision, the CPU's numeric path); step 0 compares them with
themselves, so its distance is exactly 0 and its CKA exactly 1. Definition: docs/design.md ("Feature
drift").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from benchmark import numerics
from benchmark.data import FeatureCache, TaskData
from benchmark.models import TaskModel, feature_taps, ldifs_layer_distance
from benchmark.precision import autocast

DEFAULT_SAMPLE = 64  # test images per dataset
SAMPLE_SEED = 0  # the sample is the same for every run, strategy and seed: paired comparisons
EMBEDDING = "embedding"  # the encoder's output, after the last tap (docs/design.md, "What LDIFS does not see")
DIGITS = 6  # significant digits kept in records.json


def sample_indices(n_total: int, n: int) -> list[int]:
    """A fixed, sorted sample of min(n, n_total) indices, drawn without touching the global RNG."""
    g = torch.Generator().manual_seed(SAMPLE_SEED)
    return sorted(torch.randperm(n_total, generator=g)[:min(n, n_total)].tolist())


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two [n, p] / [n, q] feature matrices (rows: the same n images), in float64:

        CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F),   Xc, Yc: columns centred,

    computed through the n x n Gram matrices (the same value; cheap when p >> n)."""
    x, y = x.flatten(1).double(), y.flatten(1).double()
    x, y = x - x.mean(0, keepdim=True), y - y.mean(0, keepdim=True)
    kx, ky = x @ x.T, y @ y.T  # <Kx, Ky> = ||Y^T X||_F^2; ||Kx||_F = ||X^T X||_F
    den = kx.norm() * ky.norm()
    return float((kx * ky).sum() / den) if den > 0 else float("nan")


def tap_names(model: TaskModel) -> list[str]:
    return [name for name, _ in feature_taps(model.encoder)] + [EMBEDDING]


@torch.no_grad()
def tap_features(model: TaskModel, images: torch.Tensor, device: str = "cpu", precision: str = "fp32",
                 batch_size: int = 128) -> list[torch.Tensor]:
    """The encoder's feature maps at every tap and its output embedding, float32 on the CPU, in eval mode."""
    modules = [m for _, m in feature_taps(model.encoder)]
    outs: list[list[torch.Tensor]] = [[] for _ in range(len(modules) + 1)]

    def hook(i):
        def fn(_m, _inp, out):
            outs[i].append((out[0] if isinstance(out, tuple) else out).float().cpu())
        return fn

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(modules)]
    was = model.training
    model.eval()
    try:
        for at in range(0, len(images), batch_size):
            with autocast(device, precision):
                outs[-1].append(model.encoder(images[at:at + batch_size].to(device)).float().cpu())
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return [torch.cat(o).contiguous() for o in outs]


def layer_drift(ref: list[torch.Tensor], cur: list[torch.Tensor]) -> tuple[list, list]:
    """Per tap: the LDIFS distance (mean over the images) and linear CKA, rounded to DIGITS significant
    digits (CKA is None where undefined: a tap whose features are constant over the sample)."""
    # A strategy that changes a tap's shape (prompt tuning adds tokens to a ViT's sequence) has no
    # position-by-position distance there: undefined (null), like CKA on constant features.
    same = [r.shape == c.shape for r, c in zip(ref, cur)]
    dist = [_round(ldifs_layer_distance(r, c).double().mean().item()) if ok else None for r, c, ok in zip(ref, cur, same)]
    cka = [_round(linear_cka(r, c)) if ok else None for r, c, ok in zip(ref, cur, same)]
    return dist, cka


def _round(v: float) -> float | None:
    return None if v != v else float(f"{v:.{DIGITS}g}")  # NaN (constant features: CKA undefined) -> null


@dataclass
class DriftMeter:
    """Measures a run's feature drift after each step (the runner adds the rows to records.json)."""

    data: dict[str, TaskData]  # every dataset of the suite
    sample: int = DEFAULT_SAMPLE
    features: FeatureCache | None = None
    model_key: str | None = None
    device: str = "cpu"
    precision: str = "fp32"
    shared: dict | None = None  # the pre-trained features, shared by the runs of a process (caller keys it)
    _ref: dict | None = field(default=None, init=False, repr=False)
    _batches: dict = field(default_factory=dict, init=False, repr=False)  # the fixed sample's images, per dataset

    def _images(self, name: str) -> torch.Tensor:
        if name not in self._batches:
            test = self.data[name].test
            self._batches[name] = torch.stack([test[i][0] for i in sample_indices(len(test), self.sample)])
        return self._batches[name]

    def _reference(self, model: TaskModel) -> dict[str, list[torch.Tensor]]:
        """The pre-trained features: called at step 0, when `model` is the pre-trained encoder."""
        store = self.shared if self.shared is not None else {}
        key = f"drift:{self.sample}"
        if key not in store:
            store[key] = {name: self._cached(model, name) for name in self.data}
        return store[key]

    def _cached(self, model: TaskModel, name: str) -> list[torch.Tensor]:
        ds = self.data[name].test
        compute = lambda: tap_features(model, self._images(name), self.device, self.precision)  # noqa: E731
        if self.features is None or not self.model_key:
            return compute()
        key = {"kind": "drift taps", "model": self.model_key, "data": ds.fingerprint, "sample": self.sample,
               "sample_seed": SAMPLE_SEED, "taps": tap_names(model), "device": torch.device(self.device).type,
               "precision": self.precision, "torch": torch.__version__, "numerics": numerics.fingerprint(),
               "channels_last": bool(getattr(model, "channels_last", False))}
        def flat():  # one tensor per file: the taps flattened and concatenated, split again below
            feats = compute()
            return torch.cat([f.flatten(1) for f in feats], dim=1)

        shapes = [tuple(s) for s in _shapes(model, self._images(name)[:1], self.device, self.precision)]
        joined = self.features.get(key, flat)
        sizes = [int(torch.tensor(s).prod()) for s in shapes]
        return [part.reshape(-1, *s) for part, s in zip(joined.split(sizes, dim=1), shapes)]

    def measure(self, model: TaskModel, step: int) -> dict:
        """{"ldifs": [D][L], "cka": [D][L]} over the suite's datasets and the taps, for this step."""
        if step == 0 or self._ref is None:
            self._ref = self._reference(model)
        dist, cka = [], []
        for name in self.data:
            ref = self._ref[name]
            cur = ref if step == 0 else tap_features(model, self._images(name), self.device, self.precision)
            d, c = layer_drift(ref, cur)
            dist.append(d)
            cka.append(c)
        return {"ldifs": dist, "cka": cka}


def _shapes(model: TaskModel, one: torch.Tensor, device: str, precision: str) -> list[torch.Size]:
    return [f.shape[1:] for f in tap_features(model, one, device, precision)]
