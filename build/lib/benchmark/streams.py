"""An ordering of datasets -> an Avalanche task-incremental benchmark (one experience per dataset)."""
from __future__ import annotations

from typing import Mapping, Sequence

from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils import _make_taskaware_classification_dataset

from .data import TaskData


def make_stream(ordering: Sequence[str], data: Mapping[str, TaskData]):
    """Experience t trains on ordering[t]: task label t, class labels local to that dataset (0..K-1).

    The experiences wrap the datasets' own torch Datasets, so images are still decoded and transformed
    one at a time when Avalanche's DataLoader asks for them."""
    if len(set(ordering)) != len(ordering):
        raise ValueError(f"ordering {list(ordering)} repeats a dataset")

    def avl(ds, t):
        return _make_taskaware_classification_dataset(ds, task_labels=t, targets=ds.targets.tolist())

    train = [avl(data[n].train, t) for t, n in enumerate(ordering)]
    test = [avl(data[n].test, t) for t, n in enumerate(ordering)]
    return with_classes_timeline(with_task_labels(benchmark_from_datasets(train=train, test=test)))
