"""An ordering of datasets -> an Avalanche task-incremental stream, on small hand-built in-memory datasets."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from benchmark.data import tensor_task_data as ImageData
from benchmark.streams import make_stream

# name -> (classes, train samples, test samples); labels cycle 0..K-1.
SPECS = {"two": (2, 4, 2), "three": (3, 6, 5), "four": (4, 9, 4)}


def _image_data(name: str, K: int, n_train: int, n_test: int, gen: torch.Generator) -> ImageData:
    return ImageData(
        name=name,
        x_train=torch.randn(n_train, 3, 8, 8, generator=gen),
        y_train=torch.arange(n_train) % K,
        x_test=torch.randn(n_test, 3, 8, 8, generator=gen),
        y_test=(torch.arange(n_test) + 1) % K,
        classnames=[f"{name}-{k}" for k in range(K)],
        templates=["a photo of a {}."],
    )


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(0)
    return {n: _image_data(n, *spec, gen) for n, spec in SPECS.items()}


@pytest.mark.parametrize("ordering", [["two", "three", "four"], ["four", "two", "three"], ["three", "four"]])
def test_make_stream_experiences(data, ordering):
    bench = make_stream(ordering, data)
    assert len(bench.train_stream) == len(ordering)
    assert len(bench.test_stream) == len(ordering)
    for stream, split in ((bench.train_stream, "train"), (bench.test_stream, "test")):
        for t, exp in enumerate(stream):
            d = data[ordering[t]]
            x, y = getattr(d, f"x_{split}"), getattr(d, f"y_{split}")
            assert exp.current_experience == t
            assert exp.task_label == t
            assert list(exp.task_labels) == [t]
            ds = exp.dataset
            assert len(ds) == len(y)
            # Targets are the dataset's own local labels 0..K-1, in order.
            assert [int(v) for v in ds.targets] == y.tolist()
            assert set(exp.classes_in_this_experience) == set(range(d.n_classes))
            assert set(exp.classes_in_this_experience) == set(y.tolist())
            # Every sample carries task label t.
            assert set(int(v) for v in ds.targets_task_labels) == {t}
            # A mini-batch is (x, y, t): the images and labels of that dataset, and t == position.
            bx, by, bt = next(iter(DataLoader(ds, batch_size=len(ds), shuffle=False)))
            assert torch.equal(bx, x)
            assert torch.equal(by, y)
            assert bt.tolist() == [t] * len(y)


def test_single_sample_access(data):
    bench = make_stream(["three", "two"], data)
    exp = bench.train_stream[1]
    x, y, t = exp.dataset[3]
    assert torch.equal(x, data["two"].x_train[3])
    assert int(y) == int(data["two"].y_train[3]) == 1
    assert t == 1


@pytest.mark.parametrize("ordering", [["two", "two"], ["two", "three", "two"]])
def test_repeated_dataset_raises(data, ordering):
    with pytest.raises(ValueError):
        make_stream(ordering, data)
