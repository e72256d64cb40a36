"""Reference inputs of a distillation strategy (ZSCL): images that are none of the tasks', and texts.

ZSCL distils the pre-trained model's image-text similarities on a reference set: in its MTIL script
(Thunderbeee/ZSCL, mtil/scripts/ZSCL.sh) the images are ImageNet's training images (`--ref-dataset
ImageNet`, read with the evaluation transform) and the texts are the captions of Conceptual Captions'
validation split (`--ref-sentences conceptual_captions`). Here both are named by a spec:

images  `<dataset>`          a registered dataset's training split (evaluation transform), e.g. photos
        `folder:<path>`      every image under a folder (an ImageFolder layout: <path>/<class>/*.jpg, the
                             classes ignored), relative to data.root unless absolute: folder:ImageNet/train
texts   `prompts:<dataset>`  a registered dataset's class names in its first template (what ZSCL reads
                             for `--ref-sentences <dataset>`)
        `captions:<file>`    the `title` column of a tab-separated file with a header, relative to
                             data.root unless absolute (the .csv that ZSCL's gather_cc.py writes)
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from .data import ImageSet, known_datasets, load_task_data
from .data.sources import TorchvisionSource
from .data.transforms import pil_transform

IMAGE_KINDS = "a registered dataset's name or folder:<path under data.root>"
TEXT_KINDS = "prompts:<registered dataset> or captions:<tab-separated file under data.root with a title column>"


class ReferenceSetError(ValueError):
    """A reference spec that cannot be read: one line, what is wrong and what is allowed."""


def check_specs(images: str, texts: str) -> None:
    """Raise ValueError (one line) for a spec of the wrong shape; whether the files exist is not checked."""
    if not isinstance(images, str) or not images or (":" in images and not images.startswith("folder:")):
        raise ValueError(f"ref_images must be {IMAGE_KINDS}, got {images!r}")
    if ":" not in images and images not in known_datasets():
        raise ValueError(f"ref_images {images!r} is no registered dataset; give {IMAGE_KINDS}")
    kind, _, rest = texts.partition(":") if isinstance(texts, str) else ("", "", "")
    if kind not in ("prompts", "captions") or not rest:
        raise ValueError(f"ref_texts must be {TEXT_KINDS}, got {texts!r}")
    if kind == "prompts" and rest not in known_datasets():
        raise ValueError(f"ref_texts {texts!r} names no registered dataset; give {TEXT_KINDS}")


def _under(root: str, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(root).expanduser() / p


def reference_images(spec: str, size: int, mean, std, dcfg: dict) -> ImageSet:
    """The reference images of `spec`, with the evaluation transform (ZSCL reads its reference set so)."""
    if spec.startswith("folder:"):
        from torchvision.datasets import ImageFolder

        folder = _under(dcfg["root"], spec.partition(":")[2])
        try:
            ds = ImageFolder(str(folder))
        except (FileNotFoundError, OSError) as e:
            raise ReferenceSetError(f"ref_images {spec}: no images under {folder} ({str(e).splitlines()[0]}); "
                                  "put them there as <class>/<image> files, e.g. ImageNet's train folder") from None
        src = TorchvisionSource(ds)
        return ImageSet(src, pil_transform(size, mean, std, train=False),
                        {"dataset": spec, "split": "reference", "transform": "eval", "n": len(src)})
    return load_task_data(spec, size, mean, std, dcfg).train_eval


def reference_texts(spec: str, dcfg: dict, size: int = 32) -> list[str]:
    """The reference texts of `spec` (see the module's docstring)."""
    kind, _, rest = spec.partition(":")
    if kind == "prompts":
        d = load_task_data(rest, size, (0.5,) * 3, (0.5,) * 3, dcfg)
        return [d.templates[0].format(c) for c in d.classnames]
    path = _under(dcfg["root"], rest)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except OSError as e:
        raise ReferenceSetError(f"ref_texts {spec}: cannot read {path} ({e.strerror or e}); for Conceptual Captions, "
                              "run ZSCL's gather_cc.py on Validation_GCC-1.1.0-Validation.tsv (mtil/datasets.md)") from None
    texts = [str(r.get("title") or "").strip() for r in rows]
    texts = [t for t in texts if t]
    if not texts:
        raise ReferenceSetError(f"ref_texts {spec}: {path} has no `title` column with text (a tab-separated "
                              "file with a header line, as gather_cc.py writes)")
    return texts


def reference_set(images: str, texts: str, fm, dcfg: dict, device: str) -> dict:
    """{"images": ImageSet, "texts": [K, D] unit-norm embeddings of the texts by the pre-trained (frozen)
    text tower, on `device`, "n_texts": K}."""
    from .data import data_settings

    d = data_settings(dcfg)
    imgs = reference_images(images, fm.image_size, fm.mean, fm.std, d)
    if len(imgs) == 0:
        raise ReferenceSetError(f"ref_images {images}: no images")
    words = reference_texts(texts, d)
    with torch.no_grad():
        emb = fm.encode_text(words).to(device)
    return {"images": imgs, "texts": emb, "n_texts": len(words), "num_workers": d["num_workers"]}


def problems(images: str, texts: str, dcfg: dict) -> list[str]:
    """One line per reference input that is missing (the pre-flight's report; nothing is decoded)."""
    from .data import check_available, data_settings

    d = data_settings(dcfg)
    out, names = [], []
    for spec in (images, texts):
        kind, _, rest = spec.partition(":")
        if not rest:  # a registered dataset's images
            names.append(spec)
        elif kind == "prompts":
            names.append(rest)
        elif kind == "folder":
            folder = _under(d["root"], rest)
            if not folder.is_dir() or not any(folder.iterdir()):
                out.append(f"reference images {spec}: no image folder at {folder}; put the images there as "
                           "<class>/<image> files (ZSCL: ImageNet's train folder), or choose ref_images=<dataset>")
        elif not _under(d["root"], rest).is_file():
            out.append(f"reference texts {spec}: no file {_under(d['root'], rest)}; for Conceptual Captions run ZSCL's "
                       "gather_cc.py on Validation_GCC-1.1.0-Validation.tsv (its mtil/datasets.md), or choose "
                       "ref_texts=prompts:<dataset>")
    lines = check_available(dict.fromkeys(names), d["root"], d["download"], d.get("variants"))
    return out + [f"reference set: {line}" for line in lines]
