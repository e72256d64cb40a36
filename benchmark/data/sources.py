"""Readers: a registry entry + the data root -> the images of one split, in a fixed order.

A `Source` gives its labels without decoding any image, and one image at a time (a PIL image, or a
uint8 array for array-backed sources), so nothing holds a dataset as float tensors. Which torchvision
class or folder layout is read comes from the registry entry (data), never from the dataset's name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .registry import MICRO_DIR, entry


class Source:
    """The images and labels of one split. Subclasses set `targets` (int64 [N])."""

    targets: np.ndarray
    classes: list[str] | None = None  # class ids as the files name them, in label order, when known
    arrays: np.ndarray | None = None  # uint8 [N, H, W] or [N, H, W, 3] when the images are in memory/mapped

    def __len__(self) -> int:
        return len(self.targets)

    def image(self, i: int):
        raise NotImplementedError

    def subset(self, idx: np.ndarray) -> "Source":
        return SubsetSource(self, np.asarray(idx, dtype=np.int64))


class ArraySource(Source):
    """uint8 images held in an array (the micro suite's npz files, or a memory-mapped cache)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, classes=None):
        self.arrays, self.targets, self.classes = x, np.asarray(y, dtype=np.int64), classes

    def image(self, i: int) -> np.ndarray:
        return self.arrays[i]

    def subset(self, idx: np.ndarray) -> "Source":
        # Fancy indexing copies: fine for the micro suite's small arrays; a memory-mapped cache is
        # subset through SubsetSource so that it stays on disk.
        if isinstance(self.arrays, np.memmap):
            return SubsetSource(self, np.asarray(idx, dtype=np.int64))
        return ArraySource(self.arrays[idx], self.targets[idx], self.classes)


class SubsetSource(Source):
    def __init__(self, base: Source, idx: np.ndarray):
        self.base, self.idx = base, idx
        self.targets, self.classes = base.targets[idx], base.classes

    def image(self, i: int):
        return self.base.image(int(self.idx[i]))


class ConcatSource(Source):
    def __init__(self, parts: list[Source]):
        self.parts = parts
        self.targets = np.concatenate([p.targets for p in parts]) if parts else np.zeros(0, np.int64)
        self.classes = parts[0].classes if parts else None
        self._starts = np.cumsum([0] + [len(p) for p in parts])

    def image(self, i: int):
        k = int(np.searchsorted(self._starts, i, side="right") - 1)
        return self.parts[k].image(i - int(self._starts[k]))


class TorchvisionSource(Source):
    """A torchvision dataset read without its transform: PIL images (RGB) and integer labels."""

    def __init__(self, ds):
        self.ds = ds
        self.targets = np.asarray(_targets(ds), dtype=np.int64)
        classes = getattr(ds, "classes", None)
        self.classes = list(classes) if classes is not None else None

    def image(self, i: int) -> Image.Image:
        img, _ = self.ds[i]
        return img.convert("RGB") if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img)).convert("RGB")


def _targets(ds) -> list[int]:
    """Labels of a torchvision dataset from the attribute it keeps them in, without decoding images."""
    for attr in ("targets", "labels", "_labels", "y"):  # y: Caltech101
        if hasattr(ds, attr):
            t = getattr(ds, attr)
            return t.tolist() if hasattr(t, "tolist") else list(t)
    if hasattr(ds, "_samples"):  # GTSRB, StanfordCars: [(path, label)]
        return [int(s[1]) for s in ds._samples]
    raise TypeError(f"cannot read the labels of {type(ds).__name__} without decoding its images")


# ---- readers, one per `kind` of the registry ------------------------------------------------------


def read_split(name: str, split: str, root: Path | None, download: bool = False, variant: str | None = None
               ) -> Source:
    """The images of `split` ("train", "test" or, for fixed splits, "val") of dataset `name` (of its
    `variant`, when one is given: benchmark/data/variants.py)."""
    e = entry(name, variant)
    return _READERS[e["kind"]](name, e, split, Path(root) if root is not None else None, download)


def _read_micro(name, e, split, root, download) -> ArraySource:
    if split not in ("train", "test"):
        raise KeyError(f"{name} has no {split} split")
    with np.load(MICRO_DIR / e["file"]) as z:
        return ArraySource(z[f"x_{split}"], z[f"y_{split}"])


def _torchvision_class(e):
    import torchvision.datasets as tvd

    return getattr(tvd, e["class"])


def _read_torchvision(name, e, split, root, download) -> Source:
    cls = _torchvision_class(e)
    base = root / e.get("root", ".")
    if "fixed_split" in e:  # one pool, split by fixed fractions (EuroSAT, Caltech101)
        pool = ConcatSource([TorchvisionSource(cls(str(base), download=download, **kw)) for kw in e["splits"]["all"]])
        return pool.subset(_fixed_part(e, len(pool), split))
    parts = [TorchvisionSource(cls(str(base), download=download, **kw)) for kw in e["splits"][split]]
    return parts[0] if len(parts) == 1 else ConcatSource(parts)


def _fixed_part(e: dict, n: int, split: str) -> np.ndarray:
    """Indices of `split` among n pooled images under the entry's `fixed_split` (fractions, seed, rounding)."""
    from .splits import fixed_split

    fs = dict(e["fixed_split"])
    seed, rounding = fs.pop("seed", 0), fs.pop("rounding", "round")
    return fixed_split(n, fs, seed, rounding)[split]


def _read_image_folder_split_files(name, e, split, root, download) -> Source:
    """An ImageFolder of class folders; a split is the list of file names in its split file (RESISC45)."""
    from torchvision.datasets import ImageFolder

    if download:
        raise RuntimeError(f"{name} has no automatic download; {e['get']}")
    parts = []
    for s in e["splits"][split]:
        with open(root / e["split_files"][s]) as f:
            names = {line.strip() for line in f if line.strip()}
        parts.append(TorchvisionSource(ImageFolder(str(root / e["folder"]),
                                                   is_valid_file=lambda p, keep=names: Path(p).name in keep)))
    return parts[0] if len(parts) == 1 else ConcatSource(parts)


def _read_image_folder_splits(name, e, split, root, download) -> Source:
    """One ImageFolder (class folders) per split folder: the task-vectors layout of EuroSAT's split."""
    from torchvision.datasets import ImageFolder

    if download:
        raise RuntimeError(f"{name} has no automatic download in this layout; {e['get']}")
    parts = [TorchvisionSource(ImageFolder(str(root / e["folder"] / s))) for s in e["splits"][split]]
    return parts[0] if len(parts) == 1 else ConcatSource(parts)


def _read_sun397(name, e, split, root, download) -> Source:
    """torchvision's SUN397 (all 108,754 images), restricted to an official partition file's list; or,
    with `fixed_split` (variant zscl), all images sorted by path and split by fixed fractions."""
    ds = _torchvision_class(e)(str(root), download=download)
    data_dir = Path(ds._data_dir)
    if "fixed_split" in e:
        # ZSCL splits torchvision's rglob order, which depends on the file system; sorted by path here,
        # so the split is the same on every machine (the same sizes as ZSCL's, not the same images).
        paths = [Path(p).relative_to(data_dir).as_posix() for p in ds._image_files]
        pool = TorchvisionSource(ds).subset(np.asarray(sorted(range(len(paths)), key=paths.__getitem__)))
        return pool.subset(_fixed_part(e, len(pool), split))
    parts = []
    for s in e["splits"][split]:
        with open(root / e["partition_files"][s]) as f:
            keep = {line.strip() for line in f if line.strip()}
        rel = {i: "/" + Path(p).relative_to(data_dir).as_posix() for i, p in enumerate(ds._image_files)}
        # rglob's order depends on the file system: sort by path so that splits are reproducible.
        idx = sorted((i for i, r in rel.items() if r in keep), key=rel.get)
        if not idx:
            raise RuntimeError(f"{root / e['partition_files'][s]} names no image under {data_dir}")
        parts.append(TorchvisionSource(ds).subset(np.asarray(idx)))
    return parts[0] if len(parts) == 1 else ConcatSource(parts)


_READERS = {"micro": _read_micro, "torchvision": _read_torchvision,
            "image_folder_split_files": _read_image_folder_split_files,
            "image_folder_splits": _read_image_folder_splits, "sun397": _read_sun397}


# How "from_data" class names are read from the files' class list (registry key `classname_rule`).
CLASSNAME_RULES = {
    "underscore_slash_to_space": lambda c: c.replace("_", " ").replace("/", " ").strip(),  # the default
    "underscore_to_space": lambda c: c.replace("_", " ").strip(),  # the reference's Cars: '/' kept
    "as_is": lambda c: c,  # the reference's CIFAR100: torchvision's names, underscores kept
}


def classnames_of(name: str, source: Source, variant: str | None = None) -> list[str]:
    """Prompt class names: the registry's list, or (entries marked "from_data": Cars, SUN397) the
    dataset's own class list, read by the entry's `classname_rule` ('_' and '/' as spaces by default)."""
    e = entry(name, variant)
    if e["classnames"] != "from_data":
        return list(e["classnames"])
    if not source.classes:
        raise RuntimeError(f"{name}: the files give no class names")
    rule = CLASSNAME_RULES[e.get("classname_rule", "underscore_slash_to_space")]
    return [rule(c) for c in source.classes]
