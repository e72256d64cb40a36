"""An ordering of datasets -> an Avalanche task-incremental benchmark (one experience per dataset)."""
from __future__ import annotations

from typing import Mapping, Sequence

from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils import _make_taskaware_classification_dataset
from torch.utils.data import TensorDataset

from .datasets import ImageData


def make_stream(ordering: Sequence[str], data: Mapping[str, ImageData]):
    """Experience t trains on ordering[t]: task label t, class labels local to that dataset (0..K-1)."""
    if len(set(ordering)) != len(ordering):
        raise ValueError(f"ordering {list(ordering)} repeats a dataset")

    def avl(x, y, t):
        return _make_taskaware_classification_dataset(TensorDataset(x, y), task_labels=t, targets=y.tolist())

    train = [avl(data[n].x_train, data[n].y_train, t) for t, n in enumerate(ordering)]
    test = [avl(data[n].x_test, data[n].y_test, t) for t, n in enumerate(ordering)]
    return with_classes_timeline(with_task_labels(benchmark_from_datasets(train=train, test=test)))
