"""The five MTIL datasets the paper suite lacked, read by torchvision from files in their real formats
(benchmark/data/writers.py, the writers the paper rehearsal uses), and ZSCL's readings of the datasets the
suite had (data.variants: zscl)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data import check_available, data_settings, entry, load_task_data, split_sources, writers

MTIL_NEW = ["Aircraft", "Caltech101", "Flowers", "Food", "OxfordPet"]
# how torchvision's reader names the classes the files carry, then the registry's rule ('_' as spaces, or as is)
READ_AS = {"Aircraft": lambda c: c, "Food": lambda c: c.replace("_", " "), "OxfordPet": lambda c: c}


@pytest.fixture
def no_md5():
    """torchvision checks the MD5 of Flowers102's .mat files; written files have other checksums."""
    with writers.unchecked_torchvision_files():
        yield


@pytest.mark.parametrize("name", MTIL_NEW)
def test_each_mtil_dataset_reads_its_written_files(name, tmp_path, no_md5):
    tiny = writers.Tiny(per_class={"train": 2, "val": 1, "test": 1})
    w = writers.write(name, tmp_path, tiny)
    e = entry(name)
    d = data_settings({"root": str(tmp_path), "val_fraction": 0.0})
    src = split_sources(name, d)
    assert src["val"] is None  # ZSCL trains on the whole train split
    if name == "Caltech101":  # one pool of 4 images x 101 classes, split 80/20
        assert (len(src["train"]), len(src["test"])) == (323, 81) and len(w.labels["all"]) == 404
        written = sorted(w.labels["all"])
    else:  # the official train and test lists (Flowers' val ids are not read)
        assert (len(src["train"]), len(src["test"])) == (len(w.labels["train"]), len(w.labels["test"]))
        assert sorted(src["test"].targets.tolist()) == sorted(w.labels["test"])
        written = sorted(w.labels["train"] + w.labels["test"])
    assert sorted(np.concatenate([src["train"].targets, src["test"].targets]).tolist()) == written
    data = load_task_data(name, 16, (0.5,) * 3, (0.5,) * 3, d)
    if w.classnames is None:  # the registry's names (ZSCL's lists), every class written
        assert data.classnames == e["classnames"] and set(written) == set(range(e["n_classes"]))
    else:  # the names the files carry, as torchvision and the registry's rule read them
        assert data.classnames == [READ_AS[name](c) for c in w.classnames] and set(written) == set(range(5))
    assert data.templates == e["templates"] and "{}" in data.templates[0]
    x, y = data.test[0]
    assert x.shape == (3, 16, 16) and y == int(data.test.targets[0])
    assert check_available([name], tmp_path) == []


def test_names_the_files_carry_are_read_with_their_spaces_slashes_and_case(tmp_path, no_md5):
    d = {"root": str(tmp_path), "val_fraction": 0.0}
    for name in ("Aircraft", "Food", "OxfordPet"):
        writers.write(name, tmp_path)
    assert load_task_data("Aircraft", 16, (0.5,) * 3, (0.5,) * 3, d).classnames[2:4] == ["F-16A/B", "Cessna 172"]
    assert load_task_data("Food", 16, (0.5,) * 3, (0.5,) * 3, d).classnames[:2] == ["apple pie", "baby back ribs"]
    assert load_task_data("OxfordPet", 16, (0.5,) * 3, (0.5,) * 3, d).classnames[:3] == \
        ["Abyssinian", "American Bulldog", "American Pit Bull Terrier"]


def test_flowers_checksums_are_restored_after_the_context():
    import torchvision.datasets as tvd

    before = dict(tvd.Flowers102._file_dict)
    with writers.unchecked_torchvision_files():
        assert tvd.Flowers102._file_dict["label"][1] is None
    assert tvd.Flowers102._file_dict == before and before["label"][1] is not None


def test_caltech101_split_is_zscls_random_split_with_seed_42(tmp_path):
    w = writers.write("Caltech101", tmp_path, writers.Tiny(per_class={"train": 1, "val": 0, "test": 1}))
    src = split_sources("Caltech101", data_settings({"root": str(tmp_path), "val_fraction": 0.0}))
    n = len(w.labels["all"])
    assert n == 202
    train, test = torch.utils.data.random_split(range(n), [int(0.8 * n), n - int(0.8 * n)],
                                                generator=torch.Generator().manual_seed(42))
    assert src["train"].idx.tolist() == sorted(train.indices)
    assert src["test"].idx.tolist() == sorted(test.indices)
    # the pooled order is torchvision's: the sorted folders (Faces, Faces_easy, ... uppercase first), two images each
    assert src["train"].base.targets[:5].tolist() == [0, 0, 1, 1, 2] == w.labels["all"][:5]


def test_a_reference_set_is_written_where_its_specs_name_files(tmp_path):
    from benchmark.reference_set import problems, reference_images, reference_texts

    images, texts = "folder:ImageNet/train", "captions:cc/val.csv"
    assert problems(images, texts, {"root": str(tmp_path)})  # nothing there yet
    assert writers.write_reference_set(tmp_path, images, texts) == ["ImageNet/train", "cc/val.csv"]
    assert problems(images, texts, {"root": str(tmp_path)}) == []
    assert len(reference_images(images, 16, (0.5,) * 3, (0.5,) * 3, {"root": str(tmp_path)})) == 3 * 2
    assert reference_texts(texts, {"root": str(tmp_path)})[0] == "a dog runs along the beach"
    assert writers.write_reference_set(tmp_path, "photos", "prompts:photos") == []


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
