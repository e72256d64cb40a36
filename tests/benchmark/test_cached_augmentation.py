"""`data.cache: true` with open_clip's train augmentation: the random resized crop is
taken from the original image, bicubic, as without the cache (and as the reference does), not from the
cached centre square; evaluation splits still read the cache."""
from __future__ import annotations

import numpy as np
import torch

from benchmark.data import load_task_data, writers
from benchmark.data.sources import ArraySource

MEAN = STD = (0.5, 0.5, 0.5)


def test_cached_training_images_are_augmented_from_the_original_image(tmp_path):
    # 20 x 16 images (the writers' default): not square, so a centre square loses columns
    writers.write("DTD", tmp_path / "data", writers.Tiny(per_class={"train": 1, "val": 1, "test": 1}))
    base = {"root": str(tmp_path / "data"), "train_transform": "openclip"}
    plain = load_task_data("DTD", 16, MEAN, STD, base)
    cached = load_task_data("DTD", 16, MEAN, STD, {**base, "cache": True, "cache_dir": str(tmp_path / "cache")})
    assert isinstance(cached.test.source, ArraySource) and isinstance(cached.test.source.arrays, np.memmap)
    assert isinstance(cached.train_eval.source, ArraySource)  # probes and heads read the cache
    assert not isinstance(cached.train.source, ArraySource)
    assert len(plain.train) == len(cached.train) > 0
    for i in range(len(plain.train)):  # the same random crop of the same pixels
        torch.manual_seed(i)
        a, ya = plain.train[i]
        torch.manual_seed(i)
        b, yb = cached.train[i]
        assert ya == yb and torch.equal(a, b)


def test_without_augmentation_the_cache_serves_training_too(tmp_path):
    writers.write("DTD", tmp_path / "data", writers.Tiny(per_class={"train": 1, "val": 1, "test": 1}))
    d = {"root": str(tmp_path / "data"), "cache": True, "cache_dir": str(tmp_path / "cache")}
    data = load_task_data("DTD", 16, MEAN, STD, d)
    assert isinstance(data.train.source, ArraySource)  # train_transform none: the eval geometry, cached
