"""The data layer: registry, readers, splits, transforms, caches and the availability report.

Nothing here imports the config, the plan or the executor; they import this.
"""
from .availability import check_available
from .caches import FeatureCache, cache_root, cached_split
from .registry import MICRO_DIR, catalog, entry, is_micro, known_datasets
from .sources import ArraySource, Source, read_split
from .splits import balanced_subset, fixed_split, train_val_split
from .settings import DataSection, data_settings
from .suite import ImageSet, TaskData, TensorSet, load_task_data, split_sources, tensor_task_data
from .transforms import TRAIN_TRANSFORMS, ArrayTransform, to_model_input

__all__ = [
    "check_available", "FeatureCache", "cache_root", "cached_split", "MICRO_DIR", "catalog", "entry", "is_micro",
    "known_datasets", "ArraySource", "Source", "read_split", "balanced_subset", "fixed_split", "train_val_split",
    "DataSection", "ImageSet", "TaskData", "TensorSet", "tensor_task_data", "data_settings", "load_task_data", "split_sources", "TRAIN_TRANSFORMS",
    "ArrayTransform", "to_model_input",
]
