"""A dataset of the suite, ready for a model: train / validation / test splits as torch Datasets that
decode and transform one image at a time (streamed through a DataLoader with workers)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .caches import cache_root, cached_split
from .registry import entry
from .sources import Source, classnames_of, read_split
from .settings import data_settings
from .splits import SPLIT_SEED, balanced_subset, train_val_split
from .transforms import ArrayTransform, pil_transform

class ImageSet(Dataset):
    """(image tensor, label) pairs of one split: a source of images and a transform."""

    def __init__(self, source: Source, transform, fingerprint: dict):
        self.source, self.transform, self.fingerprint = source, transform, fingerprint
        self.targets = torch.from_numpy(np.asarray(source.targets, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        return self.transform(self.source.image(i)), int(self.targets[i])

    def __getitems__(self, idx: list[int]):
        """A whole batch at once for in-memory arrays (one vectorised resize instead of one per image)."""
        if isinstance(self.transform, ArrayTransform):
            x = self.transform.batch(np.stack([self.source.image(i) for i in idx]))
            return [(x[k], int(self.targets[i])) for k, i in enumerate(idx)]
        return [self[i] for i in idx]


@dataclass
class TaskData:
    """One dataset of the suite: its splits (train with the train transform, the rest with the eval
    transform), class names and prompt templates."""

    name: str
    train: ImageSet
    train_eval: ImageSet  # the train split with the eval transform: probes and LP-init heads fit on it
    val: ImageSet | None
    test: ImageSet
    classnames: list[str]
    templates: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.classnames)


def _digest(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def split_sources(name: str, d: dict) -> dict[str, Source | None]:
    """train / val / test sources of a dataset under the split rules and subset settings."""
    variant = (d.get("variants") or {}).get(name)  # data.variants: benchmark/data/variants.py
    e = entry(name, variant)
    root = Path(d["root"]).expanduser()
    download = bool(d["download"] and e.get("download"))  # only where the registry says torchvision can
    if e["val"] == "fixed":
        src = {s: read_split(name, s, root, download, variant) for s in ("train", "val", "test")}
    else:
        train = read_split(name, "train", root, download, variant)
        test = read_split(name, "test", root, download, variant)
        val = None
        if e["val"] == "from_train" and d["val_fraction"] > 0:
            tr, va = train_val_split(len(train), d["val_fraction"], d["val_cap"], SPLIT_SEED)
            train, val = train.subset(tr), train.subset(va)
        src = {"train": train, "val": val, "test": test}
    for s, n in (("train", d["max_train"]), ("test", d["max_test"])):
        if n is not None:
            src[s] = src[s].subset(balanced_subset(src[s].targets, n))
    return src


def load_task_data(name: str, size: int, mean, std, dcfg: dict | None = None) -> TaskData:
    """Dataset `name` for a model taking `size` x `size` inputs normalised with (mean, std)."""
    d = data_settings(dcfg)
    variant = (d.get("variants") or {}).get(name)
    e = entry(name, variant)
    src = split_sources(name, d)
    augment = d["train_transform"] == "openclip"
    selection = {k: d[k] for k in ("val_fraction", "val_cap", "max_train", "max_test")}
    if variant is not None:  # other images or names: other cached splits and features
        selection["variant"] = variant
    train_src = src["train"]
    if e["kind"] == "micro" or d["cache"]:
        if e["kind"] != "micro":  # decode once at the model's resolution, then read the mapped arrays
            folder = Path(d["cache_dir"]).expanduser() / "splits" if d["cache_dir"] else cache_root() / "splits"
            src = {s: None if v is None else cached_split(
                v, {"dataset": name, "split": s, "selection": selection, "targets": _digest(v.targets)},
                size, folder, d["num_workers"]) for s, v in src.items()}
        if augment and e["kind"] != "micro":
            # The cache holds each image's centre square at the model's size; open_clip's (and the reference's)
            # train augmentation crops from the whole original image, bicubic. So the augmented training view
            # reads the original images, exactly as without the cache; evaluation reads the cache.
            train_tf = pil_transform(size, mean, std, train=True)
        else:
            train_src, train_tf = src["train"], ArrayTransform(size, mean, std, augment=augment)
        eval_tf = ArrayTransform(size, mean, std)
        eval_key = eval_tf.key() + ("-cached" if e["kind"] != "micro" else "")
    else:
        train_tf = pil_transform(size, mean, std, train=augment)
        eval_tf = pil_transform(size, mean, std, train=False)
        eval_key = f"openclip-eval-{size}-{tuple(mean)}-{tuple(std)}"

    def fp(split):
        return {"dataset": name, "split": split, "transform": eval_key, "selection": selection,
                "targets": _digest(src[split].targets)}

    return TaskData(
        name=name,
        train=ImageSet(train_src, train_tf, {**fp("train"), "transform": "train"}),
        train_eval=ImageSet(src["train"], eval_tf, fp("train")),
        val=None if src["val"] is None else ImageSet(src["val"], eval_tf, fp("val")),
        test=ImageSet(src["test"], eval_tf, fp("test")),
        classnames=classnames_of(name, src["train"], variant),
        templates=list(e["templates"])[:d.get("max_templates")],
    )


class TensorSet(Dataset):
    """Images already as float tensors (tests and hand-built examples only: nothing in the pipeline
    holds a real dataset this way)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, name: str, split: str):
        self.x, self.targets = x, torch.as_tensor(y).long()
        self.fingerprint = {"dataset": name, "split": split, "transform": "tensor",
                            "targets": _digest(self.targets.numpy()), "images": _digest(x.numpy())}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.x[i], int(self.targets[i])


class TensorTaskData(TaskData):
    @property
    def x_train(self):
        return self.train.x

    @property
    def y_train(self):
        return self.train.targets

    @property
    def x_test(self):
        return self.test.x

    @property
    def y_test(self):
        return self.test.targets


def tensor_task_data(name, x_train, y_train, x_test, y_test, classnames, templates, x_val=None, y_val=None
                     ) -> TaskData:
    """A TaskData over in-memory tensors (train and eval transforms are the identity)."""
    train = TensorSet(x_train, y_train, name, "train")
    val = TensorSet(x_val, y_val, name, "val") if x_val is not None else None
    return TensorTaskData(name=name, train=train, train_eval=train, val=val, test=TensorSet(x_test, y_test, name, "test"),
                          classnames=list(classnames), templates=list(templates))
