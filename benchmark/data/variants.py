"""Dataset variants: another split or another class-name list of one dataset, chosen by `data.variants`.

A registry entry (assets/datasets.json) may declare `"variant": "<name of its default>"` and
`"variants": {"<name>": {<keys that replace the entry's>}}` (a null value removes a key;
registry.entry applies them). The
setting `data.variants` maps a dataset to one of its variant names; the datasets it does not name
keep their default. The paper presets choose the variants that the authors' code reads:

- DTD `train`: the official train split alone (1,880 images; 1,692 / 188 after the 90/10 split),
  where the default `train+val` joins the official train and val splits (3,760 / 3,384).
- EuroSAT `folders`: the task-vectors layout, read from fixed folders EuroSAT_splits/{train,val,test}/
  (21,600 / 2,700 / 2,700 images chosen by whoever made them), where the default `seeded` draws
  80/10/10 of the 27,000 images with seed 0. The authors' own random split was never published;
  `python -m benchmark.data.eurosat_splits` builds the folders with the `seeded` variant's images.
- CIFAR100 `torchvision`: torchvision's class names, underscores kept ("aquarium_fish"), where the
  default `clip` is the list CLIP's evaluation prompts with (spaces).
- Cars `files`: the devkit's names with '_' as spaces and '/' kept ("Ram C/V Cargo Van Minivan 2012"),
  where the default `slash-to-space` also reads '/' as a space.
"""
from __future__ import annotations


def _variants(name: str) -> tuple[str | None, dict]:
    from .registry import catalog

    e = catalog()[name]
    return e.get("variant"), e.get("variants") or {}


def names_of(name: str) -> list[str]:
    """The variant names of dataset `name`, its default first ([] when it has none)."""
    default, others = _variants(name)
    return ([default] if default else []) + sorted(others)


def check_variants(v: dict[str, str]) -> dict[str, str]:
    """`data.variants`: every key a known dataset with variants, every value one of its variants."""
    from .registry import catalog

    with_variants = sorted(n for n in catalog() if names_of(n))
    for name, var in v.items():
        if name not in catalog() or not names_of(name):
            raise ValueError(f"dataset {name!r} has no variants; datasets with variants: {', '.join(with_variants)}")
        if var not in names_of(name):
            raise ValueError(f"variant {var!r} is not one of {name}'s: {', '.join(names_of(name))} "
                             f"({names_of(name)[0]} is the default)")
    # The default named explicitly is the default: left out, so it cannot change a run's id.
    return {k: var for k, var in sorted(v.items()) if var != names_of(k)[0]}
