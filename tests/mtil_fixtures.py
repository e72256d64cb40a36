"""Writers of tiny copies of the five MTIL datasets the paper suite lacked, in the real on-disk formats
torchvision's readers expect (a few images each). One function per dataset, each
`write_<name>(root) -> expected`, where expected holds the split sizes, the labels present and, where
the registry reads them from the files, the class names. `WRITERS` maps the registry names to them, so
a rehearsal script can import this module and write every dataset it needs.

`relax_checksums(monkeypatch)` lets torchvision accept fixture files where it checks an MD5 (Flowers102's
.mat files): with the expected MD5 set to None it checks that the files exist.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

_RNG = np.random.default_rng(27)


def _img(path: Path, size=(12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_RNG.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(path, format="JPEG")


def write_aircraft(root: Path) -> dict:
    """fgvc-aircraft-2013b/data/{variants.txt, images_variant_<split>.txt, images/<id>.jpg}: each list line
    is '<image id> <variant name>' (names may hold spaces and '/')."""
    data = Path(root) / "fgvc-aircraft-2013b" / "data"
    variants = ["707-320", "A300B4", "F-16A/B", "Cessna 172"]
    data.mkdir(parents=True, exist_ok=True)
    (data / "variants.txt").write_text("\n".join(variants) + "\n")
    ids = {"train": [], "test": []}
    for split, per in (("train", 2), ("test", 1)):
        lines = []
        for k, v in enumerate(variants):
            for i in range(per):
                image_id = f"{1000000 + 10 * k + i + (5 if split == 'test' else 0):07d}"
                _img(data / "images" / f"{image_id}.jpg")
                lines.append(f"{image_id} {v}")
                ids[split].append(image_id)
        (data / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
    return {"train": 8, "test": 4, "labels": set(range(4)), "classnames": variants}


def write_caltech101(root: Path) -> dict:
    """caltech101/101_ObjectCategories/<class>/image_NNNN.jpg, with the BACKGROUND_Google folder that
    torchvision leaves out; all 102 folders (torchvision sorts them, uppercase first)."""
    from benchmark.data import entry

    base = Path(root) / "caltech101" / "101_ObjectCategories"
    folders = ["Faces", "Faces_easy", "Leopards", "Motorbikes", "accordion", "airplanes", "anchor", "ant"]
    folders += [f"zz_class_{i:03d}" for i in range(101 - len(folders))]  # sorted after the real-looking ones
    assert len(entry("Caltech101")["classnames"]) == len(folders) == 101
    for c in folders + ["BACKGROUND_Google"]:
        for i in range(1, 3 if c != "Faces" else 4):
            _img(base / c / f"image_{i:04d}.jpg")
    n = 2 * 101 + 1  # Faces has three images
    return {"all": n, "train": int(0.8 * n), "test": n - int(0.8 * n), "labels": set(range(101))}


def write_flowers(root: Path) -> dict:
    """flowers-102/{jpg/image_NNNNN.jpg, imagelabels.mat (labels 1..102), setid.mat (trnid, valid, tstid)}."""
    import scipy.io as sio

    base = Path(root) / "flowers-102"
    n = 3 * 102
    labels = np.arange(n) % 102 + 1  # image k (1-based) has label labels[k - 1]
    for k in range(1, n + 1):
        _img(base / "jpg" / f"image_{k:05d}.jpg")
    ids = np.arange(1, n + 1)
    sio.savemat(base / "imagelabels.mat", {"labels": labels.reshape(1, -1)})
    sio.savemat(base / "setid.mat", {"trnid": ids[:102].reshape(1, -1), "valid": ids[102:204].reshape(1, -1),
                                     "tstid": ids[204:].reshape(1, -1)})
    return {"train": 102, "test": 102, "labels": set(range(102))}


def write_food(root: Path) -> dict:
    """food-101/{meta/train.json, meta/test.json: {class: ["class/id", ...]}, images/<class>/<id>.jpg}."""
    base = Path(root) / "food-101"
    classes = ["apple_pie", "baby_back_ribs", "beignets"]
    meta = {"train": {c: [] for c in classes}, "test": {c: [] for c in classes}}
    for c in classes:
        for i in range(3):
            split = "test" if i == 2 else "train"
            _img(base / "images" / c / f"{i}{len(c)}.jpg")
            meta[split][c].append(f"{c}/{i}{len(c)}")
    (base / "meta").mkdir(parents=True, exist_ok=True)
    for split, m in meta.items():
        (base / "meta" / f"{split}.json").write_text(json.dumps(m))
    return {"train": 6, "test": 3, "labels": {0, 1, 2}, "classnames": ["apple pie", "baby back ribs", "beignets"]}


def write_oxford_pet(root: Path) -> dict:
    """oxford-iiit-pet/{images/<Breed>_<n>.jpg, annotations/{trainval,test}.txt}: list lines are
    '<image id> <class id from 1> <species 1|2> <breed id>'."""
    base = Path(root) / "oxford-iiit-pet"
    breeds = [("Abyssinian", 1), ("american_bulldog", 2), ("Bengal", 1)]
    (base / "annotations").mkdir(parents=True, exist_ok=True)
    lists = {"trainval": [], "test": []}
    for k, (b, species) in enumerate(breeds):
        for i in range(1, 4):
            split = "test" if i == 3 else "trainval"
            _img(base / "images" / f"{b}_{i}.jpg")
            lists[split].append(f"{b}_{i} {k + 1} {species} {i}")
    for split, lines in lists.items():
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return {"train": 6, "test": 3, "labels": {0, 1, 2}, "classnames": ["Abyssinian", "American Bulldog", "Bengal"]}


WRITERS = {"Aircraft": write_aircraft, "Caltech101": write_caltech101, "Flowers": write_flowers,
           "Food": write_food, "OxfordPet": write_oxford_pet}


def relax_checksums(monkeypatch) -> None:
    """torchvision checks the MD5 of Flowers102's label files; fixture files have other checksums."""
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.Flowers102, "_file_dict", {k: (f, None) for k, (f, _) in tvd.Flowers102._file_dict.items()})
