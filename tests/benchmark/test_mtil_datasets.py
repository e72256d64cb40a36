"""The five MTIL datasets the paper suite lacked, read by torchvision from fixtures in their real formats
(tests/mtil_fixtures.py), and ZSCL's readings of the datasets the suite had (data.variants: zscl)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data import check_available, data_settings, entry, load_task_data, split_sources, writers

from mtil_fixtures import WRITERS, relax_checksums


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_each_mtil_dataset_reads_its_fixture(name, tmp_path, monkeypatch):
    relax_checksums(monkeypatch)
    exp = WRITERS[name](tmp_path)
    e = entry(name)
    d = data_settings({"root": str(tmp_path), "val_fraction": 0.0})
    src = split_sources(name, d)
    assert (len(src["train"]), len(src["test"]), src["val"]) == (exp["train"], exp["test"], None)
    labels = set(np.concatenate([src["train"].targets, src["test"].targets]).tolist())
    assert labels == exp["labels"]
    data = load_task_data(name, 16, (0.5,) * 3, (0.5,) * 3, d)
    assert data.classnames == exp.get("classnames", e["classnames"])
    assert data.templates == e["templates"] and "{}" in data.templates[0]
    x, y = data.test[0]
    assert x.shape == (3, 16, 16) and y == int(data.test.targets[0])
    assert check_available([name], tmp_path) == []


def test_caltech101_split_is_zscls_random_split_with_seed_42(tmp_path):
    exp = WRITERS["Caltech101"](tmp_path)
    src = split_sources("Caltech101", data_settings({"root": str(tmp_path), "val_fraction": 0.0}))
    n = exp["all"]
    train, test = torch.utils.data.random_split(range(n), [int(0.8 * n), n - int(0.8 * n)],
                                                generator=torch.Generator().manual_seed(42))
    assert src["train"].idx.tolist() == sorted(train.indices)
    assert src["test"].idx.tolist() == sorted(test.indices)
    # the pooled order is torchvision's: Faces (three images) first, so index 2 is Faces' third image
    assert src["train"].base.targets[:4].tolist() == [0, 0, 0, 1]


def test_zscl_variants_of_the_datasets_the_suite_had(tmp_path):
    writers.write("EuroSAT", tmp_path, writers.Tiny(per_class={"train": 1, "val": 0, "test": 1}))  # 20 images
    # 10 images of /a/abbey, /b/bakery/shop, /c/campus, one in no partition file
    writers.write("SUN397", tmp_path, writers.Tiny(per_class={"train": 2, "test": 1}, classes=3))
    writers.write("MNIST", tmp_path)
    variants = {"EuroSAT": "zscl", "SUN397": "zscl", "MNIST": "zscl"}
    d = data_settings({"root": str(tmp_path), "val_fraction": 0.0, "variants": variants})
    eu = split_sources("EuroSAT", d)
    assert (len(eu["train"]), len(eu["test"])) == (16, 4)  # 80/20 with floor, as ZSCL
    sun = split_sources("SUN397", d)
    assert (len(sun["train"]), len(sun["test"])) == (8, 2)  # every image, partition files unused
    names = load_task_data("SUN397", 16, (0.5,) * 3, (0.5,) * 3, d).classnames
    assert names == ["abbey", "bakery/shop", "campus"]  # '_' as spaces only, '/' kept
    mnist = load_task_data("MNIST", 16, (0.5,) * 3, (0.5,) * 3, d)
    assert mnist.classnames[:2] == ["0 - zero", "1 - one"]
    cars = entry("Cars", "zscl")
    assert cars["templates"][0] == "a photo of a {}, a type of car." and len(cars["templates"]) == 9


def test_a_missing_mtil_dataset_is_one_line_saying_how_to_get_it(tmp_path):
    lines = check_available(["Caltech101", "Flowers"], tmp_path)
    assert len(lines) == 2
    assert lines[0].startswith("dataset Caltech101: not readable under") and "data.caltech.edu" in lines[0]
    assert "101_ObjectCategories" in lines[0] and "--download" in lines[1]
