"""The embedded micro suite (files, splits, size) and the loader that turns it into model inputs."""
from __future__ import annotations

import gzip
import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.data import (
    MICRO_DIR,
    TaskData,
    balanced_subset,
    catalog,
    is_micro,
    load_task_data,
    read_split,
    to_model_input,
)


def load_arrays(name):
    tr, te = read_split(name, "train", None), read_split(name, "test", None)
    return {"x_train": tr.arrays, "y_train": tr.targets, "x_test": te.arrays, "y_test": te.targets}


def load_dataset(name, size, mean, std, max_train=None, max_test=None):
    return load_task_data(name, size, mean, std, {"max_train": max_train, "max_test": max_test})


def _all(ds):
    x, y = zip(*[ds[i] for i in range(len(ds))])
    return torch.stack(x), torch.tensor(y)

ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(n for n in catalog() if is_micro(n))
HALF = (0.5, 0.5, 0.5)


def test_catalog_lists_the_micro_suite():
    assert set(NAMES) >= {"fashion_mnist", "mnist", "animals", "digits", "textures", "photos", "scenes"}
    for name, meta in catalog().items():
        if meta["classnames"] != "from_data":
            assert len(meta["classnames"]) >= 2, name
            assert len(set(meta["classnames"])) == len(meta["classnames"]), name
            assert len(meta["classnames"]) == meta.get("n_classes", len(meta["classnames"])), name
        assert meta["templates"] and all("{}" in t for t in meta["templates"]), name


@pytest.mark.parametrize("name", NAMES)
def test_npz_file_images_and_labels(name):
    assert (MICRO_DIR / f"{name}.npz").is_file()
    a = load_arrays(name)
    K = len(catalog()[name]["classnames"])
    for split in ("train", "test"):
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        assert x.dtype == np.uint8, (name, split)
        assert x.ndim in (3, 4) and len(x) == len(y) > 0, (name, split)
        assert np.issubdtype(y.dtype, np.integer), (name, split)
        assert y.min() >= 0 and y.max() < K, (name, split)
        # Every class is present in each split.
        assert set(np.unique(y).tolist()) == set(range(K)), (name, split)
        # Real images, not a constant array.
        assert x.max() > x.min(), (name, split)


def test_load_arrays_unknown_name():
    with pytest.raises(KeyError):
        read_split("no_such_dataset", "train", None)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "animals", "scenes"])
def test_fixed_splits_share_no_image(name):
    a = load_arrays(name)
    train = {row.tobytes() for row in a["x_train"]}
    test = {row.tobytes() for row in a["x_test"]}
    assert len(test) > 0
    assert train.isdisjoint(test)


def test_micro_suite_is_small():
    files = sorted(MICRO_DIR.glob("*.npz"))
    assert {f.stem for f in files} >= set(NAMES)
    assert sum(f.stat().st_size for f in files) < 15 * 1024 * 1024


# --- balanced_subset ---------------------------------------------------------------------------

def _unbalanced_labels():
    rng = np.random.default_rng(123)
    return rng.permutation(np.repeat(np.arange(4), [10, 20, 30, 40]))


def test_balanced_subset_equal_counts_and_deterministic():
    y = _unbalanced_labels()
    idx = balanced_subset(y, 20)
    assert len(idx) == 20
    assert len(np.unique(idx)) == len(idx)
    assert np.all(np.diff(idx) > 0)  # sorted, no repeats
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=4), [5, 5, 5, 5])
    np.testing.assert_array_equal(balanced_subset(y, 20), idx)  # same call, same indices
    # Not just the first indices of each class: a different seed picks other samples, still balanced.
    other = balanced_subset(y, 20, seed=1)
    np.testing.assert_array_equal(np.bincount(y[other], minlength=4), [5, 5, 5, 5])
    assert not np.array_equal(other, idx)


def test_balanced_subset_is_unaffected_by_global_rng_state():
    y = _unbalanced_labels()
    np.random.seed(0)
    torch.manual_seed(0)
    a = balanced_subset(y, 12)
    np.random.seed(99)
    torch.manual_seed(99)
    np.random.rand(10)
    b = balanced_subset(y, 12)
    np.testing.assert_array_equal(a, b)


def test_balanced_subset_all_when_n_is_none_or_large():
    y = _unbalanced_labels()
    np.testing.assert_array_equal(balanced_subset(y, None), np.arange(len(y)))
    np.testing.assert_array_equal(balanced_subset(y, len(y)), np.arange(len(y)))
    np.testing.assert_array_equal(balanced_subset(y, 10 * len(y)), np.arange(len(y)))


def test_balanced_subset_on_real_labels():
    y = load_arrays("mnist")["y_train"]
    idx = balanced_subset(y, 50)
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=10), [5] * 10)


# --- to_model_input ----------------------------------------------------------------------------

def test_to_model_input_shape_and_dtype_with_resize():
    x = np.random.default_rng(0).integers(0, 256, size=(5, 8, 8), dtype=np.uint8)
    t = to_model_input(x, 16, HALF, HALF)
    assert isinstance(t, torch.Tensor)
    assert t.shape == (5, 3, 16, 16)
    assert t.dtype == torch.float32
    assert t.is_contiguous()
    assert float(t.min()) >= -1.0 - 1e-5 and float(t.max()) <= 1.0 + 1e-5


def test_to_model_input_normalisation_maps_255_to_1_and_0_to_minus_1():
    white = np.full((2, 8, 8), 255, dtype=np.uint8)
    black = np.zeros((2, 8, 8), dtype=np.uint8)
    # Constant images: resizing (8 -> 20) leaves the values unchanged.
    tw = to_model_input(white, 20, HALF, HALF)
    tb = to_model_input(black, 20, HALF, HALF)
    assert tw.shape == tb.shape == (2, 3, 20, 20)
    torch.testing.assert_close(tw, torch.ones_like(tw), atol=1e-5, rtol=0)
    torch.testing.assert_close(tb, -torch.ones_like(tb), atol=1e-5, rtol=0)
    # Mid-gray 51 -> 0.2 -> (0.2 - 0.5) / 0.5 = -0.6
    gray = to_model_input(np.full((1, 4, 4), 51, dtype=np.uint8), 4, HALF, HALF)
    torch.testing.assert_close(gray, torch.full((1, 3, 4, 4), -0.6), atol=1e-5, rtol=0)


def test_to_model_input_grayscale_replicated_to_three_channels():
    x = np.random.default_rng(1).integers(0, 256, size=(3, 6, 6), dtype=np.uint8)
    t = to_model_input(x, 6, HALF, HALF)  # same size: no resampling
    expected = (torch.from_numpy(x).float() / 255.0 - 0.5) / 0.5
    for c in range(3):
        torch.testing.assert_close(t[:, c], expected, atol=1e-5, rtol=0)


def test_to_model_input_per_channel_mean_std_and_rgb_layout():
    # RGB [N, H, W, 3]: channel values 255, 0, 102 -> 1.0, 0.0, 0.4 before normalisation.
    x = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    x[..., 0], x[..., 1], x[..., 2] = 255, 0, 102
    mean, std = (0.5, 0.25, 0.2), (0.5, 0.25, 0.1)
    t = to_model_input(x, 4, mean, std)
    assert t.shape == (2, 3, 4, 4)
    # (1 - 0.5) / 0.5 = 1;  (0 - 0.25) / 0.25 = -1;  (0.4 - 0.2) / 0.1 = 2
    for c, v in enumerate([1.0, -1.0, 2.0]):
        torch.testing.assert_close(t[:, c], torch.full((2, 4, 4), v), atol=1e-5, rtol=0)


# --- load_dataset ------------------------------------------------------------------------------

def test_load_dataset_respects_max_train_and_max_test():
    d = load_dataset("digits", 16, HALF, HALF, max_train=20, max_test=10)
    assert isinstance(d, TaskData)
    assert d.name == "digits" and d.val is None
    assert d.n_classes == 10 and d.classnames == catalog()["digits"]["classnames"]
    assert d.templates == catalog()["digits"]["templates"]
    xtr, ytr = _all(d.train)
    xte, yte = _all(d.test)
    assert xtr.shape == (20, 3, 16, 16) and ytr.shape == (20,)
    assert xte.shape == (10, 3, 16, 16) and yte.shape == (10,)
    assert d.train.targets.dtype == torch.long and torch.equal(d.train.targets, ytr)
    assert torch.bincount(ytr, minlength=10).tolist() == [2] * 10
    assert torch.bincount(yte, minlength=10).tolist() == [1] * 10


def test_load_dataset_three_classes_subset():
    d = load_dataset("textures", 32, HALF, HALF, max_train=9, max_test=6)
    assert len(d.train) == 9 and len(d.test) == 6
    assert torch.bincount(d.train.targets).tolist() == [3, 3, 3]
    assert torch.bincount(d.test.targets).tolist() == [2, 2, 2]


def test_load_dataset_full_and_images_match_labels():
    a = load_arrays("mnist")
    d = load_dataset("mnist", 28, HALF, HALF, max_train=30, max_test=None)
    assert len(d.test) == len(a["y_test"])
    tr = balanced_subset(a["y_train"], 30)
    xtr, ytr = _all(d.train)
    np.testing.assert_array_equal(ytr.numpy(), a["y_train"][tr])
    expected = (torch.from_numpy(a["x_train"][tr]).float() / 255.0 - 0.5) / 0.5
    torch.testing.assert_close(xtr[:, 0], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(_all(d.test)[0][:, 2], (torch.from_numpy(a["x_test"]).float() / 255.0 - 0.5) / 0.5,
                               atol=1e-5, rtol=0)
    # A batch fetched at once (DataLoader's __getitems__) equals the images fetched one by one.
    xb = torch.stack([x for x, _ in d.train.__getitems__(list(range(len(d.train))))])
    assert torch.equal(xb, xtr)
    # The same call twice gives the same subset (fixed, independent of the run).
    d2 = load_dataset("mnist", 28, HALF, HALF, max_train=30, max_test=None)
    assert torch.equal(d.train.targets, d2.train.targets) and torch.equal(_all(d2.train)[0], xtr)


# --- scripts/build_micro_suite.py: the IDX reader -----------------------------------------------

def _load_build_script():
    path = ROOT / "scripts" / "build_micro_suite.py"
    spec = importlib.util.spec_from_file_location("build_micro_suite", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write_idx(path: Path, arr: np.ndarray) -> None:
    """The IDX format: 2 zero bytes, dtype byte 0x08 (uint8), ndim byte, big-endian int32 dims, data."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">i", d) for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes(order="C"))


def test_read_idx_images_and_labels(tmp_path):
    mod = _load_build_script()
    rng = np.random.default_rng(7)
    # Non-square images, and 300 > 255 images so the count needs more than one byte of its int32.
    images = rng.integers(0, 256, size=(300, 5, 7), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(300,), dtype=np.uint8)
    _write_idx(tmp_path / "images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "labels-idx1-ubyte.gz", labels)
    # The header is the real one: magic 0x00000803 for images, 0x00000801 for labels.
    with gzip.open(tmp_path / "images-idx3-ubyte.gz", "rb") as f:
        head = f.read(16)
    assert int.from_bytes(head[:4], "big") == 0x00000803
    assert [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(3)] == [300, 5, 7]

    x = mod._read_idx(tmp_path / "images-idx3-ubyte.gz")
    y = mod._read_idx(tmp_path / "labels-idx1-ubyte.gz")
    assert x.dtype == np.uint8 and x.shape == (300, 5, 7)
    assert y.dtype == np.uint8 and y.shape == (300,)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
