"""The dataset registry: every dataset the suite knows is an entry of `assets/datasets.json`.

An entry says how to read the dataset (`kind`: micro arrays, a torchvision class, an image folder
with split files, SUN397 with its partition files), where it lives under the data root, its
splits, its class names and CLIP's zero-shot prompt templates. No code path names a dataset.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
MICRO_DIR = ASSETS / "micro"
KINDS = ("micro", "torchvision", "image_folder_split_files", "image_folder_splits", "sun397")


class DataError(ValueError):
    """A packaged data file that cannot be read: the message names it and how to restore it."""


@lru_cache(maxsize=None)
def catalog() -> dict[str, dict]:
    """name -> registry entry of every dataset the suite knows."""
    path = ASSETS / "datasets.json"
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
        if not isinstance(entries, dict):
            raise ValueError("not a mapping of dataset names to entries")
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DataError(f"{path.relative_to(ASSETS.parents[1])} is damaged ({str(e).splitlines()[0]}); restore it "
                        "with `git checkout -- benchmark/assets/datasets.json`") from None
    for name, e in entries.items():
        if e.get("kind") not in KINDS:
            raise ValueError(f"assets/datasets.json: {name} has kind {e.get('kind')!r}; known kinds: {', '.join(KINDS)}")
    return entries


def known_datasets() -> list[str]:
    return sorted(catalog())


def entry(name: str, variant: str | None = None) -> dict:
    """The registry entry of `name`; with `variant` (`data.variants`), that variant's keys replace the
    entry's (a null value removes the key). See benchmark/data/variants.py."""
    if name not in catalog():
        raise KeyError(name)
    e = catalog()[name]
    if variant is None or variant == e.get("variant"):
        return e
    others = e.get("variants") or {}
    if variant not in others:
        names = ([e["variant"]] if e.get("variant") else []) + sorted(others)
        raise KeyError(f"{name} has no variant {variant!r}; it has {', '.join(names) or 'none'}")
    out = dict(e)
    for k, v in others[variant].items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    out["variant"] = variant
    return out


def how_to_get(e: dict, root) -> str:
    """An entry's `get` (the one command that fetches or builds the dataset, or why none can) with its
    DATA_ROOT placeholder made the data root."""
    import shlex

    return e.get("get", "see docs/design.md").replace("DATA_ROOT", shlex.quote(str(root)))


def is_micro(name: str) -> bool:
    return entry(name)["kind"] == "micro"
