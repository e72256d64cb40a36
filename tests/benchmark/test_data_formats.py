"""Every paper dataset's reader on a fixture in its real on-disk format (benchmark/data/writers.py, a few images each):
the registry entry loads it with the right classes and split sizes, and a missing one is reported."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data import check_available, data_settings, entry, fixed_split, load_task_data, read_split, split_sources
from benchmark.data import caches as data_cache
from benchmark.data import writers

PAPER = ["Cars", "CIFAR10", "CIFAR100", "DTD", "EuroSAT", "GTSRB", "MNIST", "RESISC45", "SUN397", "SVHN"]
# The registry's train split of DTD (default variant train+val) joins the official train and val lists.
JOINS_VAL = {"DTD"}
# Fewer classes where the format allows it (labels in the files), so that the fixtures stay small;
# DTD, EuroSAT and RESISC45 get every class (their readers find classes from folders or lists).
TINY = writers.Tiny(per_class={"train": 2, "val": 1, "test": 1}, classes=4)


def test_every_paper_dataset_has_a_writer():
    assert set(PAPER) <= set(writers.WRITERS)  # and the five MTIL datasets (tests/test_mtil_datasets.py)


@pytest.fixture
def no_md5():
    """torchvision checks the MD5 of the real CIFAR and SVHN files; fixture files have other checksums."""
    with writers.unchecked_torchvision_files():
        yield


def test_checksums_are_restored_after_the_context():
    import torchvision.datasets as tvd

    before = (list(tvd.CIFAR10.train_list), dict(tvd.CIFAR100.meta), dict(tvd.SVHN.split_list))
    with writers.unchecked_torchvision_files():
        assert tvd.CIFAR10.train_list[0][1] is None and tvd.SVHN.split_list["train"][2] is None
        assert tvd.CIFAR100.meta["md5"] is None and tvd.CIFAR100.test_list[0][1] is None
    assert (list(tvd.CIFAR10.train_list), dict(tvd.CIFAR100.meta), dict(tvd.SVHN.split_list)) == before
    assert before[0][0][1] is not None  # the real checksum is back


@pytest.mark.parametrize("name", PAPER)
def test_each_registry_entry_reads_its_fixture(name, tmp_path, no_md5):
    w = writers.write(name, tmp_path, TINY)
    e = entry(name)
    d = {"root": str(tmp_path), "val_fraction": 0.1, "val_cap": 20000}
    src = split_sources(name, data_settings(d))
    official = {s: list(v) for s, v in w.labels.items()}
    if name in JOINS_VAL:
        official["train"] = official["train"] + official.pop("val")
    if e["val"] == "fixed":  # EuroSAT's default: the pool of all written images, split 80/10/10 with seed 0
        pool = sum(official.values(), [])
        sizes = {s: len(i) for s, i in fixed_split(len(pool), {"train": 0.8, "val": 0.1, "test": 0.1}).items()}
        assert {s: len(v) for s, v in src.items()} == sizes == {"train": 32, "val": 4, "test": 4}
        assert sorted(np.concatenate([v.targets for v in src.values()]).tolist()) == sorted(pool)
    else:  # the official train split, 90/10 with seed 0 (at least one validation image)
        n = len(official["train"])
        v = max(1, int(n * 0.1))
        assert (len(src["train"]), len(src["val"]), len(src["test"])) == (n - v, v, len(official["test"]))
        assert set(src["train"].idx.tolist()).isdisjoint(src["val"].idx.tolist())
        assert sorted(src["train"].targets.tolist() + src["val"].targets.tolist()) == sorted(official["train"])
        assert sorted(src["test"].targets.tolist()) == sorted(official["test"])
    labels = set(np.concatenate([s.targets for s in src.values()]).tolist())
    assert all(0 <= t < e["n_classes"] for t in labels)
    assert len(labels) == (e["n_classes"] if name in ("DTD", "EuroSAT", "RESISC45") else 4 if e["n_classes"] > 4
                           else e["n_classes"])
    data = load_task_data(name, 16, (0.5,) * 3, (0.5,) * 3, d)
    if w.classnames is None:
        assert data.n_classes == e["n_classes"]
    else:  # the files name the classes: '_' and '/' read as spaces by default
        assert data.classnames == [c.replace("_", " ").replace("/", " ") for c in w.classnames]
    if e.get("classes") and src["train"].classes:  # folder names on disk map to the registry's label order
        assert list(src["train"].classes) == e["classes"]
    x, y = data.test[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y == int(data.test.targets[0])
    x, y = data.train[0]
    assert x.shape == (3, 16, 16)
    assert check_available([name], tmp_path) == []


def test_the_class_colours_reach_the_reader_in_label_order(tmp_path, no_md5):
    """The image of each label is the one the writer made for it (through every reader's own order):
    each image's mean colour is nearest to its label's colour."""
    maker = writers.class_colour_image()
    for name in ("CIFAR10", "GTSRB", "SUN397", "RESISC45"):
        writers.write(name, tmp_path / name, writers.Tiny(per_class={"train": 1, "test": 1}, classes=4))
        src = read_split(name, "test", tmp_path / name)
        k = int(src.targets.max()) + 1
        centres = np.stack([np.asarray(maker(0, c), dtype=float).mean((0, 1)) for c in range(k)])
        for i in range(len(src)):
            img = src.image(i)
            colour = np.asarray(img.convert("RGB") if hasattr(img, "convert") else img, dtype=float).mean((0, 1))
            assert int(np.argmin(((centres - colour) ** 2).sum(1))) == src.targets[i], (name, i)


def test_svhn_label_10_is_digit_0(tmp_path, no_md5):
    writers.write("SVHN", tmp_path, writers.Tiny(per_class={"train": 2, "test": 1}))
    src = read_split("SVHN", "train", tmp_path)  # written with y = 10 for the two images of the digit 0
    assert sorted(set(src.targets.tolist())) == list(range(10)) and src.targets[:2].tolist() == [0, 0]


def test_a_missing_dataset_is_one_line_naming_where_and_how(tmp_path):
    lines = check_available(["SVHN", "RESISC45", "mnist"], tmp_path)
    assert len(lines) == 2  # the micro dataset is embedded
    assert lines[0].startswith("dataset SVHN: not readable under") and str(tmp_path) in lines[0]
    assert "--download" in lines[0] and "svhn/{train_32x32.mat, test_32x32.mat}" in lines[0]
    assert "no working automatic download" in lines[1] and "NWPU-RESISC45/<class>/*.jpg" in lines[1]


def test_decoded_split_cache_is_built_once_verified_and_rebuilt(tmp_path, no_md5):
    writers.write("EuroSAT", tmp_path / "data", writers.Tiny(per_class={"train": 1, "val": 0, "test": 1}))
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

    writers.write("DTD", tmp_path, writers.Tiny(per_class={"train": 2, "val": 1, "test": 1}))
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
