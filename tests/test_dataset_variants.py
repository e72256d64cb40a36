"""`data.variants` on fixtures in the datasets' real on-disk formats, made here: DTD's train split
alone, EuroSAT's fixed split folders, and the reference's class names of CIFAR100 and Cars. Each image
is one flat colour that encodes its id, so a test reads which files landed in which split."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
from PIL import Image

from experiment import config as C
from benchmark import reference_probe
from benchmark.data import check_available, data_settings, entry, split_sources
from benchmark.data.sources import classnames_of
from benchmark.data.splits import train_val_split


def _write(path: Path, ident: int) -> None:
    """A 16x16 JPEG of one colour: R and G hold the id in steps of 8 (JPEG keeps a flat colour within 2)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    r, g = divmod(ident, 32)
    Image.new("RGB", (16, 16), (4 + 8 * r, 4 + 8 * g, 128)).save(path)


def _ids(src) -> list[int]:
    out = []
    for i in range(len(src)):
        px = np.asarray(src.image(i).convert("RGB"))[8, 8].astype(int)
        out.append(int(round((px[0] - 4) / 8)) * 32 + int(round((px[1] - 4) / 8)))
    return out


def _dtd(root: Path) -> dict[str, set[int]]:
    """dtd/dtd/images/<class>/ and labels/{train,val,test}1.txt: 2 train, 1 val, 1 test image per class."""
    base = root / "dtd" / "dtd"
    lists, ids, k = {"train": [], "val": [], "test": []}, {"train": set(), "val": set(), "test": set()}, 0
    for c in entry("DTD")["classes"]:
        for i, split in enumerate(["train", "train", "val", "test"]):
            _write(base / "images" / c / f"{c}_{i:04d}.jpg", k)
            lists[split].append(f"{c}/{c}_{i:04d}.jpg")
            ids[split].add(k)
            k += 1
    (base / "labels").mkdir(parents=True)
    for split, names in lists.items():
        (base / "labels" / f"{split}1.txt").write_text("\n".join(names) + "\n")
    return ids


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


def _eurosat(root: Path) -> tuple[dict[str, set[int]], set[int]]:
    """EuroSAT_splits/{train,val,test}/<class>/ (3 / 1 / 1 per class) and the 2750/ pool torchvision reads."""
    ids, k = {"train": set(), "val": set(), "test": set()}, 0
    for c in entry("EuroSAT")["classes"]:
        for i, split in enumerate(["train", "train", "train", "val", "test"]):
            _write(root / "EuroSAT_splits" / split / c / f"{c}_{i + 1}.jpg", k)
            _write(root / "eurosat" / "2750" / c / f"{c}_{i + 1}.jpg", 1000 - k)  # other colours, same names
            ids[split].add(k)
            k += 1
    return ids, {1000 - i for s in ids.values() for i in s}


def test_eurosat_folders_variant_reads_the_fixed_split_folders(tmp_path):
    ids, pool = _eurosat(tmp_path)
    d = {"root": str(tmp_path)}
    ref = split_sources("EuroSAT", data_settings({**d, "variants": {"EuroSAT": "folders"}}))
    assert {s: len(ref[s]) for s in ref} == {"train": 30, "val": 10, "test": 10}
    assert {s: set(_ids(ref[s])) for s in ref} == ids  # exactly the folders' images, split by split
    assert ref["train"].classes == entry("EuroSAT")["classes"]  # ImageFolder's sorted class folders
    seeded = split_sources("EuroSAT", data_settings(d))
    assert {s: len(seeded[s]) for s in seeded} == {"train": 40, "val": 5, "test": 5}  # 80/10/10 of 50
    assert set().union(*(set(_ids(seeded[s])) for s in seeded)) == pool
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


def _cifar100(root: Path, names: list[str]) -> None:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for f, n in (("train", 4), ("test", 2)):
        with open(d / f, "wb") as fh:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": [0, 1, 2, 3][:n]}, fh)
    with open(d / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": names}, fh)


def test_cifar100_torchvision_variant_keeps_the_underscores(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.CIFAR100, "train_list", [[f, None] for f, _ in tvd.CIFAR100.train_list])
    monkeypatch.setattr(tvd.CIFAR100, "test_list", [[f, None] for f, _ in tvd.CIFAR100.test_list])
    monkeypatch.setattr(tvd.CIFAR100, "meta", {**tvd.CIFAR100.meta, "md5": None})
    # torchvision's real names: the registry's clip list with '_' for its spaces (the 9 two-word classes)
    clip = entry("CIFAR100")["classnames"]
    tv_names = [c.replace(" ", "_") for c in clip]
    assert sum(a != b for a, b in zip(clip, tv_names)) == 9 and "aquarium_fish" in tv_names
    _cifar100(tmp_path, tv_names)
    d = data_settings({"root": str(tmp_path), "variants": {"CIFAR100": "torchvision"}})
    src = split_sources("CIFAR100", d)
    assert classnames_of("CIFAR100", src["train"], "torchvision") == tv_names
    assert classnames_of("CIFAR100", src["train"]) == clip


def test_cars_files_variant_keeps_the_slash(tmp_path):
    base = tmp_path / "stanford_cars"
    (base / "devkit").mkdir(parents=True)
    names = ["Ram C/V Cargo Van Minivan 2012", "Audi R8 Coupe 2012"]
    sio.savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array(names, dtype=object)})
    for folder, path in (("cars_train", base / "devkit" / "cars_train_annos.mat"),
                         ("cars_test", base / "cars_test_annos_withlabels.mat")):
        rec = np.zeros(2, dtype=[("fname", object), ("class", np.uint8)])
        for i in range(2):
            rec[i] = (f"{i:05d}.jpg", i + 1)
            _write(base / folder / f"{i:05d}.jpg", i)
        sio.savemat(path, {"annotations": rec})
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
