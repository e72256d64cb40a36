"""The `data` section of the configuration: declared by the data layer, validated by the config."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from ..schema import Bool, NonNegInt, PositiveInt, Section
from .variants import check_variants


class DataSection(Section):
    """Where the datasets are, how they are split and read, and how much of each a run uses."""

    max_train: PositiveInt | None = None  # training images per dataset, class-balanced, fixed across runs
    max_test: PositiveInt | None = None  # test images per dataset, likewise
    root: str = "data"  # folder holding the paper datasets (--data-root); layouts: benchmark/assets/datasets.json
    download: Bool = False  # let torchvision fetch the datasets it can, and open_clip the weights (--download)
    cache: Bool = False  # decode each split once into a memory-mapped uint8 array at the model's resolution
    cache_dir: str | None = None  # where decoded splits and features are cached (default $CFBENCH_CACHE)
    num_workers: Annotated[NonNegInt, Field(le=256)] = 0  # DataLoader worker processes
    val_fraction: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1  # validation part of a train split (seed 0)
    val_cap: PositiveInt | None = 20000  # at most this many validation images (the reference's max_val_samples)
    train_transform: Literal["none", "openclip"] = "none"  # openclip: open_clip's train augmentation (random resized crop)
    # dataset -> one of its registry variants (other splits or class names; benchmark/data/variants.py),
    # e.g. {DTD: train, EuroSAT: folders}; a dataset not named keeps its default
    variants: Annotated[dict[str, str], AfterValidator(check_variants)] = {}
    # at most this many prompt templates per dataset for the zero-shot heads, the registry's first ones
    # (None: all of them). A cut for CPU rehearsals (scripts/rehearse_paper.py), not for results.
    max_templates: PositiveInt | None = None


def data_settings(dcfg: dict | None) -> dict:
    """A `data` section (possibly partial, e.g. from an old record) with every default filled in."""
    return DataSection.model_validate(dcfg or {}).model_dump()
