"""The data layer: registry, readers, splits, transforms, caches and the availability report.

Nothing here imports the config, the plan or the executor; they import this. The names below are
loaded on first use (PEP 562), so that the torch-free parts (the registry, the `data` section's schema)
can be read without importing torch: the command checks a configuration before its heavy imports.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "check_available": "availability",
    **dict.fromkeys(("FeatureCache", "cache_root", "cached_split"), "caches"),
    **dict.fromkeys(("MICRO_DIR", "catalog", "entry", "is_micro", "known_datasets"), "registry"),
    **dict.fromkeys(("ArraySource", "Source", "read_split"), "sources"),
    **dict.fromkeys(("balanced_subset", "fixed_split", "train_val_split"), "splits"),
    **dict.fromkeys(("DataSection", "data_settings"), "settings"),
    **dict.fromkeys(("ImageSet", "TaskData", "TensorSet", "load_task_data", "split_sources", "tensor_task_data"),
                    "suite"),
    **dict.fromkeys(("TRAIN_TRANSFORMS", "ArrayTransform", "to_model_input"), "transforms"),
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


if TYPE_CHECKING:  # what linters and type checkers see
    from .availability import check_available  # noqa: F401
    from .caches import FeatureCache, cache_root, cached_split  # noqa: F401
    from .registry import MICRO_DIR, catalog, entry, is_micro, known_datasets  # noqa: F401
    from .settings import DataSection, data_settings  # noqa: F401
    from .sources import ArraySource, Source, read_split  # noqa: F401
    from .splits import balanced_subset, fixed_split, train_val_split  # noqa: F401
    from .suite import ImageSet, TaskData, TensorSet, load_task_data, split_sources, tensor_task_data  # noqa: F401
    from .transforms import TRAIN_TRANSFORMS, ArrayTransform, to_model_input  # noqa: F401
