"""Kept for existing imports: the data layer lives in `benchmark.data`."""
from .data import MICRO_DIR, balanced_subset, catalog, known_datasets, to_model_input  # noqa: F401
from .data.suite import tensor_task_data as ImageData  # noqa: F401  (the old in-memory dataset, for tests)
