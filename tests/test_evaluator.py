"""The evaluator's reuse of work: exact, and never stale."""
from __future__ import annotations

import copy

import torch

from benchmark.data import tensor_task_data as ImageData
from benchmark.models import TaskModel
from evaluation.evaluator import SuiteEvaluator


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

    import evaluation.evaluator as E

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
