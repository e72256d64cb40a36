"""The evaluator's reuse of work: exact, and never stale."""
from __future__ import annotations

import copy
import os

import pytest
import torch

from benchmark.data import tensor_task_data as ImageData
from benchmark.models import TaskModel
from evaluation.scoring.evaluator import SuiteEvaluator

pytestmark = pytest.mark.numerics  # every test here: `make test-numerics`


def _setup(fm, cache=None):
    g = torch.Generator().manual_seed(0)
    data = {}
    for n in ("a", "b"):
        x = torch.randn(40, 3, fm.image_size, fm.image_size, generator=g)
        y = torch.arange(40) % 4
        data[n] = ImageData(n, x, y, x[:20] + 0.1, y[:20], list("wxyz"), ["{}"])
    zs = {n: torch.nn.functional.normalize(torch.randn(4, 16, generator=g), dim=-1) for n in data}
    return data, SuiteEvaluator(data=data, zs_weights=zs, step0_cache=cache)


def test_head_init_reuses_the_last_probe_only_while_the_encoder_is_unchanged(tiny_vit, monkeypatch):
    torch.manual_seed(0)
    model = TaskModel(copy.deepcopy(tiny_vit.visual), 16)
    data, ev = _setup(tiny_vit)
    fresh = SuiteEvaluator(data=data, zs_weights=None).init_head(model, "b")
    ev.evaluate(model, ["a", "b"], n_trained=0)

    import evaluation.scoring.evaluator as E

    def no_embedding(*args, **kwargs):
        raise AssertionError("the probe of the last evaluation should have been reused")

    monkeypatch.setattr(E, "embed_all", no_embedding)
    reused = ev.init_head(model, "b")
    assert torch.equal(reused[0], fresh[0]) and torch.equal(reused[1], fresh[1])  # the same fit as a fresh one

    monkeypatch.undo()
    with torch.no_grad():
        next(model.encoder.parameters()).add_(0.5)  # an in-place update, as an optimiser step makes
    after = ev.init_head(model, "b")
    assert not torch.equal(after[0], fresh[0])  # recomputed on the changed encoder


def test_step0_cache_is_shared_and_exact(tiny_vit):
    torch.manual_seed(0)
    m1 = TaskModel(copy.deepcopy(tiny_vit.visual), 16)
    m2 = TaskModel(copy.deepcopy(tiny_vit.visual), 16)
    cache = {}
    _, ev1 = _setup(tiny_vit, cache)
    _, ev2 = _setup(tiny_vit, cache)
    _, plain = _setup(tiny_vit)
    r1 = ev1.evaluate(m1, ["a", "b"], 0)
    assert "scores" in cache
    r2 = ev2.evaluate(m2, ["b", "a"], 0)
    assert r2 == plain.evaluate(m2, ["b", "a"], 0)
    assert r1["LP"] == r2["LP"] and r1["R"] == r2["R"][::-1]


def test_runs_share_step0_scores_only_on_the_same_thread_count():
    """The thread count changes the image embeddings' floats: a run on another count computes its own."""
    from experiment.runner import Resources

    res = Resources()
    run = {"model": {"name": "m"}, "data": {}, "suite": ["a"], "train": {"head_init": "lp", "probe_C": 1.0},
           "device": "cpu"}
    n = torch.get_num_threads()
    shared = res.step0_cache(run)
    torch.set_num_threads(n + 1)
    try:
        other = res.step0_cache(run)
    finally:
        torch.set_num_threads(n)
    assert other is not shared and res.step0_cache(run) is shared


def test_pretrained_features_come_from_the_disk_cache_on_second_use(tiny_vit, tmp_path, monkeypatch):
    """Row 0's features are computed once per (model, dataset, split, transform), then read back by
    any later evaluator (another run, strategy or process), giving bit-identical scores."""
    from benchmark.data import FeatureCache
    from benchmark.data import caches as data_cache

    torch.manual_seed(0)
    model = TaskModel(copy.deepcopy(tiny_vit.visual), 16)
    data, _ = _setup(tiny_vit)
    zs = {n: torch.nn.functional.normalize(torch.ones(4, 16), dim=-1) for n in data}
    first = SuiteEvaluator(data=data, zs_weights=zs, features=FeatureCache(tmp_path), model_key="w1")
    before = dict(data_cache.stats)
    r1 = first.evaluate(model, ["a", "b"], 0)
    assert data_cache.stats["feature_misses"] - before["feature_misses"] == 4  # 2 datasets x (train, test)
    assert len(list(tmp_path.glob("*.pt"))) == 4 and not list(tmp_path.glob("*.tmp*"))

    import evaluation.scoring.evaluator as E

    def no_embedding(*a, **k):
        raise AssertionError("pre-trained features should have come from the cache")

    monkeypatch.setattr(E, "embed_all", no_embedding)
    second = SuiteEvaluator(data=data, zs_weights=zs, features=FeatureCache(tmp_path), model_key="w1")
    r2 = second.evaluate(model, ["a", "b"], 0)
    assert data_cache.stats["feature_hits"] - before["feature_hits"] == 4
    assert r1 == r2
    # Other weights are another key: computed, not read.
    with pytest.raises(AssertionError, match="from the cache"):
        SuiteEvaluator(data=data, zs_weights=zs, features=FeatureCache(tmp_path), model_key="w2").evaluate(
            model, ["a", "b"], 0)
    # Another numeric path (here: another MKL mode in the environment, hence another fingerprint) is
    # another key: one machine's floats are never handed to another.
    with monkeypatch.context() as m:
        m.setenv("MKL_CBWR", "COMPATIBLE" if os.environ.get("MKL_CBWR") != "COMPATIBLE" else "AUTO")
        with pytest.raises(AssertionError, match="from the cache"):
            SuiteEvaluator(data=data, zs_weights=zs, features=FeatureCache(tmp_path), model_key="w1").evaluate(
                model, ["a", "b"], 0)
    # Another thread count is another key: it splits the convolutions' sums, so its floats differ.
    n = torch.get_num_threads()
    torch.set_num_threads(n + 1)
    try:
        with pytest.raises(AssertionError, match="from the cache"):
            SuiteEvaluator(data=data, zs_weights=zs, features=FeatureCache(tmp_path), model_key="w1").evaluate(
                model, ["a", "b"], 0)
    finally:
        torch.set_num_threads(n)
    # A damaged cache file fails its checksum: it is a miss and the features are computed again.
    f = sorted(tmp_path.glob("*.pt"))[0]
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(AssertionError, match="from the cache"):
        SuiteEvaluator(data=data, zs_weights=zs, features=FeatureCache(tmp_path), model_key="w1").evaluate(
            model, ["a", "b"], 0)


def test_probe_C_grid_is_chosen_on_validation():
    from benchmark.probe import select_probe

    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    x = torch.nn.functional.one_hot(y, 3).float() * 2 + torch.randn(60, 3, generator=g)
    w, b, c = select_probe(x[:40], y[:40], x[40:], y[40:], [0.01, 1.0, 100.0], n_classes=3)
    assert c in (0.01, 1.0, 100.0) and w.shape == (3, 3)
    from benchmark.probe import accuracy, fit_probe

    accs = {C: accuracy(x[40:] @ fit_probe(x[:40], y[:40], C)[0].T + fit_probe(x[:40], y[:40], C)[1], y[40:])
            for C in (0.01, 1.0, 100.0)}
    assert accs[c] == max(accs.values()) and c == min(C for C, a in accs.items() if a == max(accs.values()))
    with pytest.raises(ValueError, match="validation split"):
        select_probe(x, y, None, None, [0.1, 1.0])

