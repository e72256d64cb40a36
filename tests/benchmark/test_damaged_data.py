"""Damaged caches and packaged data: a corrupt or moved cache file is a miss and rebuilt, an edited decoded
split is rebuilt, a full disk while decoding is an error naming it, and a damaged packaged dataset or
dataset registry is one line naming the file and how to restore it."""
from __future__ import annotations

import json
import shutil

import pytest


from conftest import TINY, run_main


def test_a_corrupt_cache_file_is_rebuilt(tmp_path, monkeypatch):
    import torch

    from benchmark import cache_files as cache

    monkeypatch.setenv("CFBENCH_CACHE", str(tmp_path))
    p = tmp_path / "x.pt"
    cache.save(p, {"emb": torch.arange(6.0).view(2, 3)})
    assert torch.equal(cache.load(p)["emb"], torch.arange(6.0).view(2, 3))
    blob = p.read_bytes()
    p.write_bytes(blob[: len(blob) // 2])  # truncated
    assert cache.load(p) is None and not p.exists()
    # valid tensors, wrong values: the checksum catches it
    torch.save({"tensors": {"emb": torch.zeros(2, 3)}, "sha256": cache.digest({"emb": torch.ones(2, 3)})}, p)
    assert cache.load(p) is None and not p.exists()
    p.write_bytes(b"garbage")
    assert cache.load(p) is None


def test_a_truncated_micro_dataset_is_named_with_its_fix(tmp_path, monkeypatch, capsys):
    import benchmark.data.sources as sources

    micro = tmp_path / "micro"
    shutil.copytree(sources.MICRO_DIR, micro)
    blob = (micro / "digits.npz").read_bytes()
    (micro / "digits.npz").write_bytes(blob[: len(blob) // 3])
    monkeypatch.setattr(sources, "MICRO_DIR", micro)
    code, _, err, _ = run_main(["--out", str(tmp_path / "out"), *TINY, "--strategies", "ft"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err
    assert lines[-1].startswith("error: dataset digits: the packaged file benchmark/assets/micro/digits.npz is "
                                "damaged") and "scripts/build_micro_suite.py" in lines[-1]
    assert not (tmp_path / "out" / "micro" / "runs").exists()


def test_a_damaged_dataset_registry_is_one_line(tmp_path, monkeypatch, capsys):
    import benchmark.data.registry as registry

    assets = tmp_path / "benchmark" / "assets"
    assets.mkdir(parents=True)
    text = (registry.ASSETS / "datasets.json").read_text()
    (assets / "datasets.json").write_text(text[: len(text) // 2])
    monkeypatch.setattr(registry, "ASSETS", assets)
    registry.catalog.cache_clear()
    try:
        code, _, err, _ = run_main(["--out", str(tmp_path / "out"), *TINY], capsys)
    finally:
        registry.catalog.cache_clear()
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("error: benchmark/assets/datasets.json is damaged (")
    assert lines[0].endswith("restore it with `git checkout -- benchmark/assets/datasets.json`")


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """The heavy imports (torch, open_clip, Avalanche) once, so that the bounds time the cases themselves."""
    import benchmark.models  # noqa: F401
    import experiment.config  # noqa: F401


def test_a_cache_file_moved_to_another_key_is_a_miss(tmp_path):
    import shutil

    import torch

    from benchmark import cache_files as cache

    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    cache.save(a, {"f": torch.ones(2)})
    cache.save(b, {"f": torch.zeros(2)})
    shutil.copy(a, b)  # same shape, valid checksum of its own: before, b silently held a's features
    assert cache.load(a) is not None and cache.load(b) is None


def test_a_decoded_split_whose_labels_were_edited_is_rebuilt_not_used(tmp_path):
    """The sidecar .json of a cached split holds its labels under its own checksum: labels edited by hand
    (and the checksum left as it was) make a miss, rebuilt from the source, never the edited labels."""
    import numpy as np

    from benchmark.data import caches as data_cache
    from benchmark.data.sources import ArraySource

    rng = np.random.default_rng(0)
    src = ArraySource(rng.integers(0, 256, (6, 20, 20, 3), dtype=np.uint8), np.array([0, 1, 2, 0, 1, 2]), ["a", "b", "c"])
    key = {"dataset": "hand-made", "split": "test"}
    data_cache.cached_split(src, key, 16, tmp_path)
    (meta,) = tmp_path.glob("*.json")
    sidecar = json.loads(meta.read_text())
    sidecar["targets"] = [2, 2, 2, 2, 2, 2]
    meta.write_text(json.dumps(sidecar))
    data_cache._verified.clear()  # as a new process would
    before = dict(data_cache.stats)
    again = data_cache.cached_split(src, key, 16, tmp_path)
    assert data_cache.stats["split_builds"] - before["split_builds"] == 1
    assert data_cache.stats["split_hits"] == before["split_hits"]
    assert list(again.targets) == [0, 1, 2, 0, 1, 2] and json.loads(meta.read_text())["targets"] == [0, 1, 2, 0, 1, 2]
    assert sorted(q.name for q in tmp_path.iterdir()) == sorted([meta.name, meta.with_suffix(".npy").name])


def test_a_full_disk_while_a_split_is_decoded_is_an_error_naming_it_not_a_crash(tmp_path, monkeypatch):
    """The decoded-split cache is a memory-mapped file, sparse until written: on a full disk a page
    written into the map killed the process with SIGBUS. Its blocks are now reserved first, so a full
    disk is an OSError there (one line, from file_problem), and no partial file is left."""
    import errno

    import numpy as np

    from benchmark.data import caches as data_cache
    from benchmark.data.sources import ArraySource
    from experiment.guards import file_problem

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(data_cache.os, "posix_fallocate", full)
    src = ArraySource(np.zeros((4, 20, 20, 3), dtype=np.uint8), np.arange(4), ["a", "b", "c", "d"])
    with pytest.raises(OSError) as e:
        data_cache.cached_split(src, {"dataset": "hand-made", "split": "train"}, 16, tmp_path)
    line = file_problem(e.value)
    assert line.startswith(str(tmp_path)) and line.endswith(".npy: No space left on device: the file system is full; "
                                                            "free space, or choose another --out (or CFBENCH_CACHE for the cache)")
    assert list(tmp_path.iterdir()) == []
