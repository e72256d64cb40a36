"""`data.variants` on fixtures in the datasets' real on-disk formats (benchmark/data/writers.py): DTD's train split
alone, EuroSAT's fixed split folders, and the reference's class names of CIFAR100 and Cars. Each image
is one flat colour that encodes its id, so a test reads which files landed in which split."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiment import config as C
from benchmark import reference_probe
from benchmark.data import check_available, data_settings, entry, split_sources, writers
from benchmark.data.sources import classnames_of
from benchmark.data.splits import train_val_split


def _id_image(ident: int, label: int) -> Image.Image:
    """A 16x16 image of one colour: R and G hold the id in steps of 8 (JPEG keeps a flat colour within 2)."""
    r, g = divmod(ident, 32)
    return Image.new("RGB", (16, 16), (4 + 8 * r, 4 + 8 * g, 128))


def _ids(src) -> list[int]:
    out = []
    for i in range(len(src)):
        px = np.asarray(src.image(i).convert("RGB"))[8, 8].astype(int)
        out.append(int(round((px[0] - 4) / 8)) * 32 + int(round((px[1] - 4) / 8)))
    return out


def _dtd(root: Path) -> dict[str, set[int]]:
    """dtd/dtd/images/<class>/ and labels/{train,val,test}1.txt: 2 train, 1 val, 1 test image per class."""
    w = writers.write("DTD", root, writers.Tiny(per_class={"train": 2, "val": 1, "test": 1}, image=_id_image))
    return {s: set(v) for s, v in w.ids.items()}


def test_dtd_train_variant_reads_the_official_train_split_alone(tmp_path):
    ids = _dtd(tmp_path)
    d = {"root": str(tmp_path), "val_fraction": 0.1, "val_cap": 20000}
    default = split_sources("DTD", data_settings(d))
    ref = split_sources("DTD", data_settings({**d, "variants": {"DTD": "train"}}))
    # 47 classes: the default joins train1 + val1 = 141 images -> 127 / 14; the reference reads train1
    # alone, 94 images -> int(9.4) = 9 for validation, 85 for training (real DTD: 1,880 -> 1,692 / 188).
    assert (len(default["train"]), len(default["val"])) == (127, 14)
    assert (len(ref["train"]), len(ref["val"]), len(ref["test"])) == (85, 9, 47)
    assert set(_ids(ref["train"])) | set(_ids(ref["val"])) == ids["train"]  # no image of val1.txt
    assert set(_ids(default["train"])) | set(_ids(default["val"])) == ids["train"] | ids["val"]
    assert set(_ids(ref["test"])) == ids["test"] == set(_ids(default["test"]))
    # The 90/10 split is the reference's: torch.randperm with seed 0 over the 94 images of train1.
    tr, va = train_val_split(94, 0.1, 20000)
    assert _ids(ref["val"]) == [sorted(ids["train"])[i] for i in va]


def _eurosat(root: Path) -> dict[str, set[int]]:
    """EuroSAT_splits/{train,val,test}/<class>/ (3 / 1 / 1 per class) and the 2750/ pool torchvision reads."""
    w = writers.write("EuroSAT", root, writers.Tiny(per_class={"train": 3, "val": 1, "test": 1}, image=_id_image))
    return {s: set(v) for s, v in w.ids.items()}


def test_eurosat_folders_variant_reads_the_fixed_split_folders(tmp_path):
    ids = _eurosat(tmp_path)
    d = {"root": str(tmp_path)}
    ref = split_sources("EuroSAT", data_settings({**d, "variants": {"EuroSAT": "folders"}}))
    assert {s: len(ref[s]) for s in ref} == {"train": 30, "val": 10, "test": 10}
    assert {s: set(_ids(ref[s])) for s in ref} == ids  # exactly the folders' images, split by split
    assert ref["train"].classes == entry("EuroSAT")["classes"]  # ImageFolder's sorted class folders
    seeded = split_sources("EuroSAT", data_settings(d))
    assert {s: len(seeded[s]) for s in seeded} == {"train": 40, "val": 5, "test": 5}  # 80/10/10 of 50
    assert set().union(*(set(_ids(seeded[s])) for s in seeded)) == set().union(*ids.values())  # the same images
    assert set(_ids(seeded["test"])) != ids["test"]  # drawn from the pool with seed 0, not the test folder
    # The reference probe refits EuroSAT on its train split alone and chooses its head's rate on a
    # 90/10 split of it: its validation split is fixed, not carved from the train split.
    assert not reference_probe.val_is_carved("EuroSAT") and reference_probe.val_is_carved("DTD")


def test_a_missing_variant_layout_is_reported_with_its_own_layout(tmp_path):
    _eurosat(tmp_path)
    assert check_available(["EuroSAT"], tmp_path, variants={"EuroSAT": "folders"}) == []
    empty = tmp_path / "empty"
    [line] = check_available(["EuroSAT"], empty, variants={"EuroSAT": "folders"})
    assert "EuroSAT_splits/{train,val,test}/<class>/*.jpg" in line
    # the command that builds the folders, with this data root (benchmark/data/eurosat_splits.py)
    assert f"python -m benchmark.data.eurosat_splits --data-root {empty} --download" in line


def test_cifar100_torchvision_variant_keeps_the_underscores(tmp_path):
    # torchvision's real names: the registry's clip list with '_' for its spaces (the 9 two-word classes)
    clip = entry("CIFAR100")["classnames"]
    tv_names = [c.replace(" ", "_") for c in clip]
    assert sum(a != b for a, b in zip(clip, tv_names)) == 9 and "aquarium_fish" in tv_names
    writers.write("CIFAR100", tmp_path, writers.Tiny(per_class={"train": 1, "test": 1}, classes=4))
    d = data_settings({"root": str(tmp_path), "variants": {"CIFAR100": "torchvision"}})
    with writers.unchecked_torchvision_files():
        src = split_sources("CIFAR100", d)
        assert src["train"].classes == tv_names  # the meta file the writer wrote: torchvision's spellings
    assert classnames_of("CIFAR100", src["train"], "torchvision") == tv_names
    assert classnames_of("CIFAR100", src["train"]) == clip


def test_cars_files_variant_keeps_the_slash(tmp_path):
    names = ["Ram C/V Cargo Van Minivan 2012", "Audi R8 Coupe 2012"]
    writers.write("Cars", tmp_path, writers.Tiny(per_class={"train": 1, "test": 1}, names=tuple(names)))
    src = split_sources("Cars", data_settings({"root": str(tmp_path), "val_fraction": 0.0}))
    assert classnames_of("Cars", src["train"], "files") == names
    assert classnames_of("Cars", src["train"])[0] == "Ram C V Cargo Van Minivan 2012"


@pytest.mark.parametrize("variants, words", [
    ({"DTD": "val"}, "variant 'val' is not one of DTD's: train+val, train (train+val is the default)"),
    ({"GTSRB": "x"}, "dataset 'GTSRB' has no variants; datasets with variants: CIFAR100, Cars, DTD, EuroSAT, MNIST, SUN397"),
])
def test_bad_variants_are_one_config_error(variants, words):
    cfg = C.load_preset("paper-single")
    cfg["data"]["variants"] = variants
    with pytest.raises(C.ConfigError, match="data.variants") as e:
        C.validate(cfg)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_naming_a_default_variant_changes_no_run_id():
    base = C.load_preset("micro")
    ids = [r["run_id"] for r in C.plan(C.validate(base))]
    base["data"]["variants"] = {"DTD": "train+val"}
    assert [r["run_id"] for r in C.plan(C.validate(base))] == ids == ["f97155813ff5", "f8dd0507ae79"]
