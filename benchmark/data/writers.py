"""Tiny datasets written in each dataset's real on-disk format: the files a download (or a user's
unpacking) leaves under `data.root`, with a few small images instead of thousands.

The readers (sources.py) are tested on them (tests/benchmark/test_data_formats.py, tests/benchmark/test_dataset_variants.py)
and the paper path is rehearsed on them end to end (scripts/rehearse_paper.py). `WRITERS` maps a
dataset name to its writer; adding a dataset to the suite is one entry here (a function that writes
its layout, as the registry's `layout` line describes it). A writer writes every layout the dataset's
variants read (EuroSAT: the 2750/ pool and the EuroSAT_splits/ folders), so any `data.variants`
choice finds its files.

What is written is chosen by a `Tiny` (images per class of each split the format has, how many
classes get images where the format allows a subset, the image maker, the class names of formats
that name their own classes), and the writer returns a `Written`: the label of every image it wrote,
split by split, and the class names it wrote, for tests to compare with what a reader returns.
Nothing here is random unless the image maker is: the default one draws from a generator seeded
with each image's number.

Longer than 300 lines because it holds one writer per dataset format (fifteen of them: the paper's ten and
the five MTIL datasets it lacked, each short); split
by format, every file would repeat the shared counter and image helpers for one function.
"""
from __future__ import annotations

import contextlib
import pickle
import shutil
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from .registry import entry

# (image number, label) -> an RGB image. The number is unique within one writer call.
ImageMaker = Callable[[int, int], Image.Image]

# Real class names of the datasets whose files name their classes (the registry lists none for them):
# Cars' devkit names (one with the '/' that the `files` variant keeps) and SUN397's ClassName.txt lines.
CARS_NAMES = ("AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 Coupe 2012",
              "Ram C/V Cargo Van Minivan 2012", "BMW M3 Coupe 2012")
SUN397_NAMES = ("/a/abbey", "/b/bakery/shop", "/c/campus", "/b/beach", "/k/kitchen")
# and of the MTIL datasets whose files name their classes: FGVC-Aircraft's variants.txt (with a '/' and a
# space), Food-101's meta keys, Oxford-IIIT Pet's breeds (upper case: cats, species 1; lower case: dogs)
AIRCRAFT_NAMES = ("707-320", "A300B4", "F-16A/B", "Cessna 172", "DHC-8-100")
FOOD_NAMES = ("apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beignets")
PET_NAMES = ("Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "Bengal")


def class_colour_image(size: tuple[int, int] = (20, 16)) -> ImageMaker:
    """Images whose mean colour depends on the label (plus noise seeded by the image's number), so
    that a probe on any reasonable features can tell some classes apart."""
    def make(ident: int, label: int) -> Image.Image:
        rng = np.random.default_rng(ident)
        base = np.array([(37 * label) % 256, (91 * label + 60) % 256, (53 * label + 130) % 256], dtype=np.int16)
        px = base + rng.integers(-40, 41, size=(size[1], size[0], 3))
        return Image.fromarray(np.clip(px, 0, 255).astype(np.uint8))
    return make


@dataclass(frozen=True)
class Tiny:
    """What to write. `per_class`: images per class of each split the format has (train, val, test;
    a format without a split ignores it). `classes`: how many classes get images (the first ones),
    where the format allows a subset; formats whose reader finds classes from folders or list files
    (DTD, EuroSAT, RESISC45) get every class. `names`: the class names written by formats that carry
    them (Cars, SUN397; default the real ones above)."""

    per_class: dict[str, int] = field(default_factory=lambda: {"train": 2, "val": 1, "test": 1})
    classes: int | None = None
    names: tuple[str, ...] | None = None
    image: ImageMaker = field(default_factory=class_colour_image)


@dataclass
class Written:
    """The labels written, split by split, in the order written; the class names the files carry."""

    labels: dict[str, list[int]] = field(default_factory=dict)
    ids: dict[str, list[int]] = field(default_factory=dict)  # the image numbers given to the image maker
    classnames: list[str] | None = None


class _Counter:
    def __init__(self, tiny: Tiny, written: Written):
        self.tiny, self.written, self.n = tiny, written, 0

    def image(self, split: str, label: int) -> Image.Image:
        self.written.labels.setdefault(split, []).append(label)
        self.written.ids.setdefault(split, []).append(self.n)
        self.n += 1
        return self.tiny.image(self.n - 1, label).convert("RGB")

    def array(self, split: str, label: int, shape: tuple[int, int]) -> np.ndarray:
        """The image as a uint8 array of `shape` (H, W) in RGB, for the array formats."""
        return np.asarray(self.image(split, label).resize((shape[1], shape[0])), dtype=np.uint8)


def _save(img: Image.Image, path: Path, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)


def _n_classes(tiny: Tiny, total: int) -> int:
    return total if tiny.classes is None else max(1, min(total, tiny.classes))


def _labels(split: str, tiny: Tiny, k: int) -> list[int]:
    """Labels of a split: per_class[split] images of each of the first k classes, class by class."""
    return [c for c in range(k) for _ in range(tiny.per_class.get(split, 0))]


# ---- one writer per dataset ---------------------------------------------------------------------


def _svhn(root: Path, tiny: Tiny, out: _Counter) -> None:
    """svhn/{train,test}_32x32.mat: X [32, 32, 3, N] uint8, y [N, 1] with 10 standing for the digit 0."""
    import scipy.io as sio

    k = _n_classes(tiny, 10)
    (root / "svhn").mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        labels = _labels(split, tiny, k)
        x = np.stack([out.array(split, y, (32, 32)) for y in labels], axis=-1) if labels else \
            np.zeros((32, 32, 3, 0), np.uint8)
        y = np.array([[10 if v == 0 else v] for v in labels], dtype=np.uint8).reshape(-1, 1)
        sio.savemat(root / "svhn" / f"{split}_32x32.mat", {"X": x, "y": y})


def _cifar(name: str, root: Path, tiny: Tiny, out: _Counter) -> None:
    """cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta} or cifar-100-python/{train, test,
    meta}: pickled dicts of uint8 rows [N, 3072] (channel-major 32x32) and their labels."""
    ten = name == "CIFAR10"
    folder, key = ("cifar-10-batches-py", "labels") if ten else ("cifar-100-python", "fine_labels")
    classes = entry(name)["classnames"]
    k = _n_classes(tiny, len(classes))
    d = root / folder
    d.mkdir(parents=True, exist_ok=True)

    def rows(split: str, labels: list[int]) -> np.ndarray:
        return np.stack([out.array(split, y, (32, 32)).transpose(2, 0, 1).reshape(-1) for y in labels]) if labels \
            else np.zeros((0, 3072), np.uint8)

    train = _labels("train", tiny, k)
    if ten:  # the train split is spread over five batches, in order
        parts = np.array_split(np.arange(len(train)), 5)
        files = [(f"data_batch_{i + 1}", "train", [train[j] for j in p]) for i, p in enumerate(parts)]
        files.append(("test_batch", "test", _labels("test", tiny, k)))
    else:
        files = [("train", "train", train), ("test", "test", _labels("test", tiny, k))]
    for fname, split, labels in files:
        with open(d / fname, "wb") as fh:
            pickle.dump({"data": rows(split, labels), key: list(labels)}, fh)
    names = [c.replace(" ", "_") for c in classes]  # torchvision's spellings: '_' between words
    with open(d / ("batches.meta" if ten else "meta"), "wb") as fh:
        pickle.dump({"label_names" if ten else "fine_label_names": names}, fh)


def _idx(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">i", d) for d in arr.shape)
    path.write_bytes(head + arr.astype(np.uint8).tobytes())


def _mnist(root: Path, tiny: Tiny, out: _Counter) -> None:
    """MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte: big-endian idx files, 28x28 gray."""
    k = _n_classes(tiny, 10)
    raw = root / "MNIST" / "raw"
    for split, prefix in (("train", "train"), ("test", "t10k")):
        labels = _labels(split, tiny, k)
        gray = [np.asarray(Image.fromarray(out.array(split, y, (28, 28))).convert("L")) for y in labels]
        _idx(raw / f"{prefix}-images-idx3-ubyte", np.stack(gray) if gray else np.zeros((0, 28, 28), np.uint8))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", np.array(labels, dtype=np.uint8))


def _eurosat(root: Path, tiny: Tiny, out: _Counter) -> None:
    """EuroSAT_splits/{train,val,test}/<class>/<class>_<n>.jpg (the task-vectors split, variant `folders`),
    and the same images in the eurosat/2750/<class>/ pool that torchvision reads (variant `seeded`)."""
    n = 0
    for c in entry("EuroSAT")["classes"]:
        label = entry("EuroSAT")["classes"].index(c)
        for split in ("train", "val", "test"):
            for _ in range(tiny.per_class.get(split, 0)):
                n += 1
                img = out.image(split, label)
                _save(img, root / "EuroSAT_splits" / split / c / f"{c}_{n}.jpg")
                shutil.copyfile(root / "EuroSAT_splits" / split / c / f"{c}_{n}.jpg",
                                _mkparent(root / "eurosat" / "2750" / c / f"{c}_{n}.jpg"))


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _resisc45(root: Path, tiny: Tiny, out: _Counter) -> None:
    """resisc45/NWPU-RESISC45/<class>/<class>_<n>.jpg and resisc45/resisc45-{train,val,test}.txt (the
    file names of each split, Neumann et al.); every class gets images, as ImageFolder needs."""
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for label, c in enumerate(entry("RESISC45")["classes"]):
        i = 0
        for split in ("train", "val", "test"):
            for _ in range(tiny.per_class.get(split, 0)):
                i += 1
                fn = f"{c}_{i:03d}.jpg"
                _save(out.image(split, label), root / "resisc45" / "NWPU-RESISC45" / c / fn)
                lists[split].append(fn)
    for split, names in lists.items():
        (root / "resisc45" / f"resisc45-{split}.txt").write_text("".join(f"{x}\n" for x in names))


def _dtd(root: Path, tiny: Tiny, out: _Counter) -> None:
    """dtd/dtd/images/<class>/<class>_<n>.jpg and dtd/dtd/labels/{train,val,test}1.txt (partition 1)."""
    base = root / "dtd" / "dtd"
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for label, c in enumerate(entry("DTD")["classes"]):
        i = 0
        for split in ("train", "val", "test"):
            for _ in range(tiny.per_class.get(split, 0)):
                _save(out.image(split, label), base / "images" / c / f"{c}_{i:04d}.jpg")
                lists[split].append(f"{c}/{c}_{i:04d}.jpg")
                i += 1
    (base / "labels").mkdir(parents=True, exist_ok=True)
    for split, names in lists.items():
        (base / "labels" / f"{split}1.txt").write_text("".join(f"{x}\n" for x in names))


def _gtsrb(root: Path, tiny: Tiny, out: _Counter) -> None:
    """gtsrb/GTSRB/Training/<class:05d>/*.ppm (labels from the sorted folder names, so the first k
    classes) and gtsrb/GTSRB/Final_Test/Images/*.ppm with gtsrb/GT-final_test.csv (';', ClassId)."""
    base = root / "gtsrb"
    k = _n_classes(tiny, 43)
    for i, y in enumerate(_labels("train", tiny, k)):
        _save(out.image("train", y), base / "GTSRB" / "Training" / f"{y:05d}" / f"00000_{i:05d}.ppm", "PPM")
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i, y in enumerate(_labels("test", tiny, k)):
        img = out.image("test", y)
        _save(img, base / "GTSRB" / "Final_Test" / "Images" / f"{i:05d}.ppm", "PPM")
        rows.append(f"{i:05d}.ppm;{img.width};{img.height};1;1;{img.width - 1};{img.height - 1};{y}")
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")


def _cars(root: Path, tiny: Tiny, out: _Counter) -> None:
    """stanford_cars/devkit/{cars_meta.mat, cars_train_annos.mat}, cars_test_annos_withlabels.mat and the
    images in cars_train/, cars_test/ (annotations: file name and class id from 1)."""
    import scipy.io as sio

    names = list(tiny.names)[:_n_classes(tiny, len(tiny.names))]
    out.written.classnames = names
    base = root / "stanford_cars"
    (base / "devkit").mkdir(parents=True, exist_ok=True)
    sio.savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array(names, dtype=object)})
    for split, folder, path in (("train", "cars_train", base / "devkit" / "cars_train_annos.mat"),
                                ("test", "cars_test", base / "cars_test_annos_withlabels.mat")):
        labels = _labels(split, tiny, len(names))
        rec = np.zeros(len(labels), dtype=[("fname", object), ("class", np.uint8)])
        for i, y in enumerate(labels):
            rec[i] = (f"{i:05d}.jpg", y + 1)
            _save(out.image(split, y), base / folder / f"{i:05d}.jpg")
        sio.savemat(path, {"annotations": rec})


def _sun397(root: Path, tiny: Tiny, out: _Counter) -> None:
    """SUN397/ClassName.txt, SUN397/<letter>/<class>/sun_*.jpg and the official partition files
    SUN397/Partitions/{Training,Testing}_01.txt; plus one image in no partition (never read)."""
    classes = list(tiny.names)[:_n_classes(tiny, len(tiny.names))]
    out.written.classnames = [c[3:] for c in classes]  # as torchvision reads a line: without its "/a/"
    base = root / "SUN397"
    base.mkdir(parents=True, exist_ok=True)
    (base / "ClassName.txt").write_text("".join(f"{c}\n" for c in classes))
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for label, c in enumerate(classes):
        i = 0
        for split in ("train", "test"):
            for _ in range(tiny.per_class.get(split, 0)):
                rel = f"{c}/sun_{c.strip('/').replace('/', '')}{i}.jpg"
                _save(out.image(split, label), base / rel.lstrip("/"))
                lists[split].append(rel)
                i += 1
    first = classes[0].lstrip("/")
    _save(tiny.image(10**6, 0).convert("RGB"), base / first / "sun_unlisted.jpg")  # in no partition
    (base / "Partitions").mkdir(exist_ok=True)
    (base / "Partitions" / "Training_01.txt").write_text("".join(f"{x}\n" for x in lists["train"]))
    (base / "Partitions" / "Testing_01.txt").write_text("".join(f"{x}\n" for x in lists["test"]))


# ---- the five MTIL datasets the paper suite lacked (ZSCL's benchmark), torchvision's readers ----------


def _aircraft(root: Path, tiny: Tiny, out: _Counter) -> None:
    """fgvc-aircraft-2013b/data/{variants.txt, images_variant_{train,test}.txt, images/<id>.jpg}: a list
    line is '<7-digit image id> <variant name>' (names may hold spaces and '/')."""
    names = list(tiny.names)[:_n_classes(tiny, len(tiny.names))]
    out.written.classnames = names  # as torchvision reads variants.txt: one name a line
    data = root / "fgvc-aircraft-2013b" / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "variants.txt").write_text("".join(f"{v}\n" for v in names))
    for split in ("train", "test"):
        lines = []
        for y in _labels(split, tiny, len(names)):
            image_id = f"{1_000_000 + out.n:07d}"
            _save(out.image(split, y), data / "images" / f"{image_id}.jpg")
            lines.append(f"{image_id} {names[y]}\n")
        (data / f"images_variant_{split}.txt").write_text("".join(lines))


# Caltech-101's 101 category folders (torchvision sorts them, uppercase first, and leaves out BACKGROUND_Google)
CALTECH101_FOLDERS = tuple(sorted(
    "accordion airplanes anchor ant barrel bass beaver binocular bonsai brain brontosaurus buddha butterfly camera "
    "cannon car_side ceiling_fan cellphone chair chandelier cougar_body cougar_face crab crayfish crocodile "
    "crocodile_head cup dalmatian dollar_bill dolphin dragonfly electric_guitar elephant emu euphonium ewer Faces "
    "Faces_easy ferry flamingo flamingo_head garfield gerenuk gramophone grand_piano hawksbill headphone hedgehog "
    "helicopter ibis inline_skate joshua_tree kangaroo ketch lamp laptop Leopards llama lobster lotus mandolin mayfly "
    "menorah metronome minaret Motorbikes nautilus octopus okapi pagoda panda pigeon pizza platypus pyramid revolver "
    "rhino rooster saxophone schooner scissors scorpion sea_horse snoopy soccer_ball stapler starfish stegosaurus "
    "stop_sign strawberry sunflower tick trilobite umbrella watch water_lilly wheelchair wild_cat windsor_chair "
    "wrench yin_yang".split()))


def _caltech101(root: Path, tiny: Tiny, out: _Counter) -> None:
    """caltech101/101_ObjectCategories/<folder>/image_NNNN.jpg for all 101 folders, plus BACKGROUND_Google
    (never read). One pool (split `all`: the images of every split of `tiny`, class by class), which the
    registry splits 80/20 as ZSCL does."""
    base = root / "caltech101" / "101_ObjectCategories"
    n = sum(tiny.per_class.values())
    for label, c in enumerate(CALTECH101_FOLDERS):
        for i in range(1, n + 1):
            _save(out.image("all", label), base / c / f"image_{i:04d}.jpg")
    _save(tiny.image(10**6, 0).convert("RGB"), base / "BACKGROUND_Google" / "image_0001.jpg")


def _flowers(root: Path, tiny: Tiny, out: _Counter) -> None:
    """flowers-102/{jpg/image_NNNNN.jpg, imagelabels.mat (labels 1..102, one per image), setid.mat (trnid,
    valid, tstid: image numbers from 1)}."""
    import scipy.io as sio

    base = root / "flowers-102"
    k = _n_classes(tiny, len(entry("Flowers")["classnames"]))
    labels: list[int] = []
    ids: dict[str, list[int]] = {}
    for split, key in (("train", "trnid"), ("val", "valid"), ("test", "tstid")):
        for y in _labels(split, tiny, k):
            labels.append(y + 1)
            ids.setdefault(key, []).append(len(labels))
            _save(out.image(split, y), base / "jpg" / f"image_{len(labels):05d}.jpg")
    sio.savemat(base / "imagelabels.mat", {"labels": np.array(labels, dtype=np.uint8).reshape(1, -1)})
    sio.savemat(base / "setid.mat", {key: np.array(ids.get(key, []), dtype=np.uint16).reshape(1, -1)
                                     for key in ("trnid", "valid", "tstid")})


def _food(root: Path, tiny: Tiny, out: _Counter) -> None:
    """food-101/{meta/train.json, meta/test.json: {class: ["class/id", ...]}, images/<class>/<id>.jpg}."""
    import json

    names = sorted(tiny.names)[:_n_classes(tiny, len(tiny.names))]  # torchvision sorts the classes
    out.written.classnames = names
    base = root / "food-101"
    (base / "meta").mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        meta: dict[str, list[str]] = {c: [] for c in names}
        for y in _labels(split, tiny, len(names)):
            ident = f"{100_000 + out.n}"
            _save(out.image(split, y), base / "images" / names[y] / f"{ident}.jpg")
            meta[names[y]].append(f"{names[y]}/{ident}")
        (base / "meta" / f"{split}.json").write_text(json.dumps(meta))


def _oxford_pet(root: Path, tiny: Tiny, out: _Counter) -> None:
    """oxford-iiit-pet/{images/<Breed>_<n>.jpg, annotations/{trainval,test}.txt}: a list line is
    '<image id> <class id from 1> <species: 1 cat, 2 dog> <breed id>'; torchvision names a class by its
    image ids' breed, title-cased, '_' as spaces."""
    breeds = list(tiny.names)[:_n_classes(tiny, len(tiny.names))]
    out.written.classnames = [" ".join(w.title() for w in b.split("_")) for b in breeds]
    base = root / "oxford-iiit-pet"
    (base / "annotations").mkdir(parents=True, exist_ok=True)
    count = dict.fromkeys(breeds, 0)
    for split, fname in (("train", "trainval"), ("test", "test")):
        lines = []
        for y in _labels(split, tiny, len(breeds)):
            b = breeds[y]
            count[b] += 1
            _save(out.image(split, y), base / "images" / f"{b}_{count[b]}.jpg")
            lines.append(f"{b}_{count[b]} {y + 1} {1 if b[0].isupper() else 2} {count[b]}\n")
        (base / "annotations" / f"{fname}.txt").write_text("".join(lines))


@dataclass(frozen=True)
class Writer:
    """A dataset's writer. `every_class`: its reader finds the classes from folders or list files, so
    every class gets images whatever `Tiny.classes` says (otherwise labels would shift). `names`: the
    class names it writes by default, for formats whose files name their classes."""

    write: Callable[[Path, Tiny, _Counter], None]
    every_class: bool = False
    names: tuple[str, ...] | None = None


# dataset name -> its writer: one entry per dataset of the registry that lives on disk
WRITERS: dict[str, Writer] = {
    "Aircraft": Writer(_aircraft, names=AIRCRAFT_NAMES),
    "Caltech101": Writer(_caltech101, every_class=True),
    "Cars": Writer(_cars, names=CARS_NAMES),
    "CIFAR10": Writer(lambda root, tiny, out: _cifar("CIFAR10", root, tiny, out)),
    "CIFAR100": Writer(lambda root, tiny, out: _cifar("CIFAR100", root, tiny, out)),
    "DTD": Writer(_dtd, every_class=True),
    "EuroSAT": Writer(_eurosat, every_class=True),
    "Flowers": Writer(_flowers),
    "Food": Writer(_food, names=FOOD_NAMES),
    "GTSRB": Writer(_gtsrb),
    "MNIST": Writer(_mnist),
    "OxfordPet": Writer(_oxford_pet, names=PET_NAMES),
    "RESISC45": Writer(_resisc45, every_class=True),
    "SUN397": Writer(_sun397, names=SUN397_NAMES),
    "SVHN": Writer(_svhn),
}


def n_classes_written(name: str, tiny: Tiny) -> int:
    """How many classes `write(name, root, tiny)` gives images to."""
    w = WRITERS[name]
    total = len(tiny.names or w.names) if w.names else len(entry(name)["classnames"])
    return total if w.every_class else _n_classes(tiny, total)


def write(name: str, root: Path | str, tiny: Tiny | None = None) -> Written:
    """Writes dataset `name` under `root` in its real on-disk format; returns what it wrote."""
    if name not in WRITERS:
        raise KeyError(f"no writer for dataset {name!r}; writers: {', '.join(sorted(WRITERS))}")
    w, tiny, written = WRITERS[name], tiny or Tiny(), Written()
    if w.names and tiny.names is None:
        tiny = replace(tiny, names=w.names)
    w.write(Path(root), tiny, _Counter(tiny, written))
    return written


def write_reference_set(root: Path | str, images: str, texts: str, tiny: Tiny | None = None) -> list[str]:
    """The files of a distillation strategy's reference set (ZSCL's ImageNet images and Conceptual Captions;
    benchmark/reference_set.py reads them), where its specs name files under `root`: `folder:<path>` gets
    an ImageFolder of three classes (`tiny.per_class["train"]` JPEG images each), `captions:<file>` a
    tab-separated file with a header and a `title` column, as ZSCL's gather_cc.py writes it. A spec naming
    a registered dataset writes nothing here (write the dataset). Returns what it wrote, relative to root."""
    root, tiny = Path(root), tiny or Tiny()
    wrote = []
    kind, _, rest = images.partition(":")
    if kind == "folder" and rest:
        folder = Path(rest) if Path(rest).is_absolute() else root / rest
        for label, c in enumerate(("n01440764", "n01443537", "n01484850")):  # ImageNet's first synsets
            for i in range(max(1, tiny.per_class.get("train", 1))):
                _save(tiny.image(2 * 10**6 + 10 * label + i, label).convert("RGB"),
                      folder / c / f"{c}_{i}.JPEG", "JPEG")
        wrote.append(rest)
    kind, _, rest = texts.partition(":")
    if kind == "captions" and rest:
        path = Path(rest) if Path(rest).is_absolute() else root / rest
        path.parent.mkdir(parents=True, exist_ok=True)
        captions = ["a dog runs along the beach", "the old town square at night", "a plate of pasta with basil",
                    "aerial view of farmland", "a red car parked by the road", "a child reads a book"]
        path.write_text("title\tfilepath\n" + "".join(f"{t}\t{i}.jpg\n" for i, t in enumerate(captions)),
                        encoding="utf-8")
        wrote.append(rest)
    return wrote


@contextlib.contextmanager
def unchecked_torchvision_files() -> Iterator[None]:
    """torchvision checks the MD5 of the real CIFAR, SVHN and Flowers102 files; written files have other checksums,
    so within this context the expected checksums are None (torchvision then checks that the files
    exist). Restored afterwards. For the written datasets only: never around real data."""
    import torchvision.datasets as tvd

    saved = [(tvd.CIFAR10, "train_list"), (tvd.CIFAR10, "test_list"), (tvd.CIFAR10, "meta"),
             (tvd.CIFAR100, "train_list"), (tvd.CIFAR100, "test_list"), (tvd.CIFAR100, "meta"),
             (tvd.SVHN, "split_list"), (tvd.Flowers102, "_file_dict")]
    before = [(cls, attr, cls.__dict__.get(attr, getattr(cls, attr)), attr in cls.__dict__) for cls, attr in saved]
    try:
        for cls in (tvd.CIFAR10, tvd.CIFAR100):
            cls.train_list = [[f, None] for f, _ in cls.train_list]
            cls.test_list = [[f, None] for f, _ in cls.test_list]
            cls.meta = {**cls.meta, "md5": None}
        tvd.SVHN.split_list = {k: [u, f, None] for k, (u, f, _) in tvd.SVHN.split_list.items()}
        tvd.Flowers102._file_dict = {k: (f, None) for k, (f, _) in tvd.Flowers102._file_dict.items()}
        yield
    finally:
        for cls, attr, value, own in reversed(before):
            if own:
                setattr(cls, attr, value)
            else:
                delattr(cls, attr)
