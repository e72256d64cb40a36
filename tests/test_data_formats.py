"""Every paper dataset's reader on a fixture in its real on-disk format, made here (a few images each):
the registry entry loads it with the right classes and split sizes, and a missing one is reported."""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import torch
from PIL import Image

from benchmark.data import check_available, data_settings, entry, load_task_data, read_split, split_sources
from benchmark.data import caches as data_cache

RNG = np.random.default_rng(0)
PAPER = ["Cars", "CIFAR10", "CIFAR100", "DTD", "EuroSAT", "GTSRB", "MNIST", "RESISC45", "SUN397", "SVHN"]


def _img(path: Path, size=(12, 10), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(path, format=fmt)


def _idx(path: Path, arr: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">i", d) for d in arr.shape)
    path.write_bytes(head + arr.astype(np.uint8).tobytes())


def make_fixture(name: str, root: Path) -> dict:
    """Writes dataset `name` under root in its real format; returns the expected {split: size} and classes."""
    if name == "SVHN":  # .mat files: X [32, 32, 3, N] uint8, y [N, 1] with 10 standing for digit 0
        for split, n in (("train", 20), ("test", 6)):
            y = (np.arange(n) % 10 + 1).reshape(-1, 1)
            (root / "svhn").mkdir(parents=True, exist_ok=True)
            sio.savemat(root / "svhn" / f"{split}_32x32.mat",
                        {"X": RNG.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": y.astype(np.uint8)})
        return {"train": 20, "test": 6, "labels": set(range(10))}
    if name in ("CIFAR10", "CIFAR100"):  # pickled dicts of uint8 rows [N, 3072]
        k, folder, key = (10, "cifar-10-batches-py", "labels") if name == "CIFAR10" else (100, "cifar-100-python", "fine_labels")
        d = root / folder
        d.mkdir(parents=True)
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"] if k == 10 else ["train", "test"]
        for f in files:
            n = 4 if f != "test" and f != "test_batch" else 5
            if k == 100 and f == "train":
                n = 20
            with open(d / f, "wb") as fh:
                pickle.dump({"data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8),
                             key: [i % k for i in range(n)]}, fh)
        with open(d / ("batches.meta" if k == 10 else "meta"), "wb") as fh:
            pickle.dump({"label_names" if k == 10 else "fine_label_names": [f"c{i}" for i in range(k)]}, fh)
        return {"train": 20, "test": 5, "labels": set(range(5 if k == 10 else 20))}
    if name == "MNIST":  # raw idx files
        raw = root / "MNIST" / "raw"
        for prefix, n in (("train", 20), ("t10k", 6)):
            _idx(raw / f"{prefix}-images-idx3-ubyte", RNG.integers(0, 256, (n, 28, 28)))
            _idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
        return {"train": 20, "test": 6, "labels": set(range(10))}
    if name == "EuroSAT":  # one image folder per class, 27,000 images in the real one; split 80/10/10
        for c in entry(name)["classes"]:
            for i in range(2):
                _img(root / "eurosat" / "2750" / c / f"{c}_{i}.jpg")
        return {"train": 16, "val": 2, "test": 2, "labels": set(range(10))}
    if name == "RESISC45":  # class folders + the split files of Neumann et al.
        classes = entry(name)["classes"]
        lists = {"train": [], "val": [], "test": []}
        for c in classes:
            for i, split in enumerate(["train", "train", "val", "test"]):
                fn = f"{c}_{i:03d}.jpg"
                _img(root / "resisc45" / "NWPU-RESISC45" / c / fn)
                lists[split].append(fn)
        for split, names in lists.items():
            (root / "resisc45" / f"resisc45-{split}.txt").write_text("\n".join(names) + "\n")
        return {"train": 90, "test": 45, "labels": set(range(45))}
    if name == "DTD":  # images/<class>/ + labels/{train,val,test}1.txt
        base = root / "dtd" / "dtd"
        classes = entry(name)["classes"]
        lists = {"train": [], "val": [], "test": []}
        for c in classes:
            for i, split in enumerate(["train", "val", "test"]):
                _img(base / "images" / c / f"{c}_{i:04d}.jpg")
                lists[split].append(f"{c}/{c}_{i:04d}.jpg")
        (base / "labels").mkdir(parents=True)
        for split, names in lists.items():
            (base / "labels" / f"{split}1.txt").write_text("\n".join(names) + "\n")
        return {"train": 94, "test": 47, "labels": set(range(47))}
    if name == "GTSRB":  # Training/<class:05d>/*.ppm; Final_Test/Images/*.ppm + GT-final_test.csv (';')
        base = root / "gtsrb"
        for c in range(43):
            _img(base / "GTSRB" / "Training" / f"{c:05d}" / f"00000_{c:05d}.ppm", fmt="PPM")
        rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
        for i in range(5):
            _img(base / "GTSRB" / "Final_Test" / "Images" / f"{i:05d}.ppm", fmt="PPM")
            rows.append(f"{i:05d}.ppm;12;10;1;1;11;9;{i * 7}")
        (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
        return {"train": 43, "test": 5, "labels": set(range(43))}
    if name == "Cars":  # devkit .mat annotations (class ids from 1), images in cars_train/ and cars_test/
        base = root / "stanford_cars"
        (base / "devkit").mkdir(parents=True)
        classes = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 Coupe 2012"]
        sio.savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array(classes, dtype=object)})

        def annos(folder, n, path):
            rec = np.zeros(n, dtype=[("fname", object), ("class", np.uint8)])
            for i in range(n):
                rec[i] = (f"{i:05d}.jpg", i % 3 + 1)
                _img(base / folder / f"{i:05d}.jpg")
            sio.savemat(path, {"annotations": rec})

        annos("cars_train", 9, base / "devkit" / "cars_train_annos.mat")
        annos("cars_test", 6, base / "cars_test_annos_withlabels.mat")
        return {"train": 9, "test": 6, "labels": {0, 1, 2}, "classnames": ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 Coupe 2012"]}
    if name == "SUN397":  # SUN397/ClassName.txt, <letter>/<class>/sun_*.jpg, official partition files
        base = root / "SUN397"
        classes = ["/a/abbey", "/b/bakery/shop", "/c/campus"]
        base.mkdir(parents=True)
        (base / "ClassName.txt").write_text("\n".join(classes) + "\n")
        train, test = [], []
        for c in classes:
            for i in range(3):
                rel = f"{c}/sun_{c.strip('/').replace('/', '')}{i}.jpg"
                _img(base / rel.lstrip("/"))
                (train if i < 2 else test).append(rel)
        _img(base / "a" / "abbey" / "sun_unlisted.jpg")  # in no partition: must not be read
        (base / "Partitions").mkdir()
        (base / "Partitions" / "Training_01.txt").write_text("\n".join(train) + "\n")
        (base / "Partitions" / "Testing_01.txt").write_text("\n".join(test) + "\n")
        return {"train": 6, "test": 3, "labels": {0, 1, 2}, "classnames": ["abbey", "bakery shop", "campus"]}
    raise KeyError(name)


@pytest.fixture
def no_md5(monkeypatch):
    """torchvision checks the MD5 of the real CIFAR and SVHN files; fixture files have other checksums,
    so the expected MD5s are set to None (torchvision then checks that the files exist)."""
    import torchvision.datasets as tvd

    for cls in (tvd.CIFAR10, tvd.CIFAR100):
        monkeypatch.setattr(cls, "train_list", [[f, None] for f, _ in cls.train_list])
        monkeypatch.setattr(cls, "test_list", [[f, None] for f, _ in cls.test_list])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": None})
    monkeypatch.setattr(tvd.SVHN, "split_list", {k: [u, f, None] for k, (u, f, _) in tvd.SVHN.split_list.items()})


@pytest.mark.parametrize("name", PAPER)
def test_each_registry_entry_reads_its_fixture(name, tmp_path, no_md5):
    exp = make_fixture(name, tmp_path)
    e = entry(name)
    d = {"root": str(tmp_path), "val_fraction": 0.1, "val_cap": 20000}
    src = split_sources(name, data_settings(d))
    if e["val"] == "fixed":
        assert {s: len(v) for s, v in src.items()} == {s: exp[s] for s in ("train", "val", "test")}
    else:  # the official train split, 90/10 with seed 0 (at least one validation image)
        n = exp["train"]
        v = max(1, int(n * 0.1))
        assert (len(src["train"]), len(src["val"]), len(src["test"])) == (n - v, v, exp["test"])
        assert set(src["train"].idx.tolist()).isdisjoint(src["val"].idx.tolist())
    labels = set(np.concatenate([s.targets for s in src.values()]).tolist())
    assert labels == exp["labels"], name
    assert all(0 <= t < e["n_classes"] for t in labels)
    data = load_task_data(name, 16, (0.5,) * 3, (0.5,) * 3, d)
    assert data.n_classes == (e["n_classes"] if "classnames" not in exp else len(exp["classnames"]))
    if "classnames" in exp:
        assert data.classnames == exp["classnames"]
    if e.get("classes") and src["train"].classes:  # folder names on disk map to the registry's label order
        assert list(src["train"].classes) == e["classes"]
    x, y = data.test[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y == int(data.test.targets[0])
    x, y = data.train[0]
    assert x.shape == (3, 16, 16)
    assert check_available([name], tmp_path) == []


def test_svhn_label_10_is_digit_0(tmp_path, no_md5):
    make_fixture("SVHN", tmp_path)
    src = read_split("SVHN", "train", tmp_path)
    assert sorted(set(src.targets.tolist())) == list(range(10)) and src.targets[9] == 0


def test_a_missing_dataset_is_one_line_naming_where_and_how(tmp_path):
    lines = check_available(["SVHN", "RESISC45", "mnist"], tmp_path)
    assert len(lines) == 2  # the micro dataset is embedded
    assert lines[0].startswith("dataset SVHN: not readable under") and str(tmp_path) in lines[0]
    assert "--download" in lines[0] and "svhn/{train_32x32.mat, test_32x32.mat}" in lines[0]
    assert "no working automatic download" in lines[1] and "NWPU-RESISC45/<class>/*.jpg" in lines[1]


def test_decoded_split_cache_is_built_once_verified_and_rebuilt(tmp_path, no_md5):
    make_fixture("EuroSAT", tmp_path / "data")
    d = {"root": str(tmp_path / "data"), "cache": True, "cache_dir": str(tmp_path / "cache")}
    before = dict(data_cache.stats)
    a = load_task_data("EuroSAT", 16, (0.5,) * 3, (0.5,) * 3, d)
    assert data_cache.stats["split_builds"] - before["split_builds"] == 3
    assert isinstance(a.test.source.arrays, np.memmap) and a.test.source.arrays.shape == (2, 16, 16, 3)
    data_cache._verified.clear()  # as a new process would
    b = load_task_data("EuroSAT", 16, (0.5,) * 3, (0.5,) * 3, d)
    assert data_cache.stats["split_hits"] - before["split_hits"] == 3
    assert torch.equal(a.test[1][0], b.test[1][0])
    # A damaged file fails its checksum and is rebuilt, with the same content.
    f = sorted((tmp_path / "cache" / "splits").glob("*.npy"))[0]
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0xFF
    f.write_bytes(bytes(raw))
    data_cache._verified.clear()
    load_task_data("EuroSAT", 16, (0.5,) * 3, (0.5,) * 3, d)
    assert data_cache.stats["split_builds"] - before["split_builds"] == 4
    assert not list((tmp_path / "cache" / "splits").glob(".*.tmp"))


def test_decoded_images_stream_through_dataloader_workers(tmp_path):
    """PIL-backed splits with open_clip's transforms go through worker processes (they pickle)."""
    from benchmark.probe import embed_all

    make_fixture("DTD", tmp_path)
    data = load_task_data("DTD", 16, (0.5,) * 3, (0.5,) * 3,
                          {"root": str(tmp_path), "train_transform": "openclip"})
    loader = torch.utils.data.DataLoader(data.train, batch_size=8, num_workers=2, shuffle=True)
    x, y = next(iter(loader))
    assert x.shape == (8, 3, 16, 16) and y.dtype == torch.long

    class Flat(torch.nn.Module):
        def embed(self, x):
            return x.flatten(1)[:, :4]

        def train(self, mode=True):
            return self

    one = embed_all(Flat(), data.test, num_workers=0)
    two = embed_all(Flat(), data.test, num_workers=2)
    assert one.shape == (47, 4) and torch.equal(one, two)
