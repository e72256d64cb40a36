"""Build `EuroSAT_splits/{train,val,test}/<class>/` (the layout the task-vectors and LDIFS code read, the
`folders` variant of EuroSAT) from the downloaded EuroSAT RGB archive, with one command:

    python -m benchmark.data.eurosat_splits --data-root DIR [--download]

What the reference's split is: neither the task-vectors code (mlfoundations/task_vectors) nor the LDIFS
code makes these folders; both only read them. Their authors describe the split as a random split of
the 27,000 images of EuroSAT.zip into 21,600 / 2,700 / 2,700 (task_vectors issue #1) and published
neither the seed nor the file lists, so no command can rebuild their exact images. This one draws the
same sizes the way the suite's default `seeded` variant does (one permutation of the archive's images in
torchvision's order, seed 0, 80/10/10), so the folders hold exactly the `seeded` variant's images,
split by split: a run on `folders` built here equals one on `seeded`, and anyone rebuilding them gets
the same files. Files are hard links to the extracted archive where the file system allows (no second
copy), else copies; the folder appears complete or not at all (built under a temporary name, renamed).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

FOLDER = "EuroSAT_splits"


class SplitError(ValueError):
    """The splits cannot be built here: the message says why and what to do (one line)."""


def plan_splits(root: Path, download: bool = False) -> dict[str, list[tuple[Path, str]]]:
    """{split: [(image file, class folder)]} of the `seeded` variant's split of `root`/eurosat/2750."""
    from torchvision.datasets import EuroSAT

    from .registry import entry
    from .splits import fixed_split

    e = entry("EuroSAT")  # the default (seeded) entry: where the archive lives and how it is split
    try:
        pool = EuroSAT(str(root / e.get("root", ".")), download=download)
    except RuntimeError as err:
        raise SplitError(f"EuroSAT is not under {root} ({str(err).splitlines()[0]}); add --download to fetch "
                         f"EuroSAT.zip into {root}/eurosat/2750 first") from None
    fractions = dict(e["fixed_split"])
    seed = fractions.pop("seed", 0)
    parts = fixed_split(len(pool.samples), fractions, seed)
    return {split: [(Path(pool.samples[i][0]), pool.classes[pool.samples[i][1]]) for i in idx]
            for split, idx in parts.items()}


def build(root: Path, download: bool = False) -> dict[str, int]:
    """Write `root`/EuroSAT_splits/; returns the number of images per split."""
    root = Path(root).expanduser()
    target = root / FOLDER
    if target.exists():
        raise SplitError(f"{target} exists already; remove it (rm -r {target}) to build it again")
    parts = plan_splits(root, download)
    tmp = root / f".{FOLDER}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for split, files in parts.items():
            for src, cls in files:
                dst = tmp / split / cls / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, dst)
                except OSError:  # another file system, or links not allowed: a copy
                    shutil.copy2(src, dst)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {split: len(files) for split, files in parts.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.data.eurosat_splits",
                                 description="Build EuroSAT_splits/{train,val,test}/<class>/ (the layout of the "
                                             "paper presets' EuroSAT) from the EuroSAT RGB archive.")
    ap.add_argument("--data-root", required=True, metavar="DIR", help="the folder holding the datasets (data.root)")
    ap.add_argument("--download", action="store_true", help="fetch EuroSAT.zip with torchvision first if missing")
    args = ap.parse_args(argv)
    try:
        counts = build(Path(args.data_root), args.download)
    except SplitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write {e.filename or args.data_root}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"{Path(args.data_root) / FOLDER}: " + ", ".join(f"{s} {n:,}" for s, n in counts.items()) + " images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
