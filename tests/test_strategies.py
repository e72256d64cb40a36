"""The strategy registry, and one smoke test over every registered strategy (DomainBed-style)."""
from __future__ import annotations

import copy
import dataclasses
import sys

import pytest
import torch

import strategies
from benchmark.datasets import ImageData
from benchmark.models import TaskModel
from benchmark.streams import make_stream
from benchmark.training import HeadInitPlugin, TrainConfig, head_init_weights, make_template, embed_all


def test_registry_lists_the_builtin_strategies():
    assert {"ft", "ldifs"} <= set(strategies.available())
    for name in strategies.available():
        cls = strategies.get(name)
        assert dataclasses.is_dataclass(cls) and cls.name == name and cls.__doc__


def test_unknown_strategy_and_hyperparameters_are_rejected_with_the_allowed_names():
    with pytest.raises(strategies.SpecError, match=r"unknown strategy 'nope'; available: .*ft.*ldifs"):
        strategies.build("nope")
    with pytest.raises(strategies.SpecError, match=r"no hyperparameter gamma; allowed: lam, anchor, layers, norm_axis"):
        strategies.build("ldifs", {"gamma": 1})
    with pytest.raises(strategies.SpecError, match="anchor must be one of previous, pretrained"):
        strategies.build("ldifs", {"anchor": "first"})
    with pytest.raises(strategies.SpecError, match="lam must be >= 0"):
        strategies.build("ldifs", {"lam": -1})


def test_spec_parsing_and_config_identity():
    assert strategies.parse_spec("ft") == ("ft", {})
    name, params = strategies.parse_spec("ldifs:lam=1,layers=[0,4,7],anchor=pretrained")
    assert name == "ldifs" and params == {"lam": 1, "layers": [0, 4, 7], "anchor": "pretrained"}
    cfg = strategies.to_config(strategies.build(name, params))
    assert isinstance(cfg["lam"], float)  # lam=1 and lam=1.0 name the same run
    assert cfg == {"name": "ldifs", "lam": 1.0, "anchor": "pretrained", "layers": [0, 4, 7], "norm_axis": 1}
    with pytest.raises(strategies.SpecError):
        strategies.parse_spec("ldifs:lam")


def test_registering_a_name_twice_fails_loudly():
    @dataclasses.dataclass
    class Other(strategies.Strategy):
        """x"""

    with pytest.raises(ValueError, match="registered twice"):
        strategies.register("ft")(Other)


def _data(fm, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 3, fm.image_size, fm.image_size, generator=g)
    y = torch.arange(32) % 4
    return {"a": ImageData("a", x, y, x[:8], y[:8], list("wxyz"), ["{}"]),
            "b": ImageData("b", x.flip(0), y, x[:8], y[:8], list("wxyz"), ["{}"])}


@pytest.mark.parametrize("name", strategies.available())
def test_every_strategy_trains_two_tasks(tiny_vit, name):
    torch.manual_seed(0)
    model = TaskModel(copy.deepcopy(tiny_vit.visual), 16)
    before = copy.deepcopy(model.encoder.state_dict())
    data = _data(tiny_vit)
    strategy = strategies.build(name)
    init = HeadInitPlugin(lambda m, t: head_init_weights("lp", embed_all(m, data["ab"[t]].x_train),
                                                         data["ab"[t]].y_train, None, 1.0, 1.0))
    losses = []

    class Record(strategies.base.SupervisedPlugin):
        def after_training_iteration(self, strategy, **kwargs):
            losses.append(strategy.loss.item())

    template = make_template(model, TrainConfig(epochs=1, batch_size=16, lr=1e-3, warmup_steps=1),
                             [init, *strategy.plugins(model), Record()], "cpu")
    for exp in make_stream(["a", "b"], data).train_stream:
        template.train(exp)
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert not torch.equal(before["conv1.weight"], model.encoder.state_dict()["conv1.weight"])
    assert model.head(0).weight.shape == (4, 16) and model.head(1).weight.shape == (4, 16)
    out = model(data["a"].x_test, torch.zeros(8, dtype=torch.long))
    assert out.shape == (8, 4)


def test_the_readme_example_strategy_works(tiny_vit):
    """The 'Adding a strategy' example in README.md, executed as if it were strategies/l2sp.py."""
    import re
    import types

    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(# strategies/l2sp\.py\n.*?)```", text, re.S).group(1)
    module = types.ModuleType("strategies._readme_l2sp")
    module.__package__ = "strategies"
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    try:
        exec(compile(code, "README.md", "exec"), module.__dict__)
        s = strategies.build("l2sp", {"alpha": 1})
        assert s.alpha == 1.0
        torch.manual_seed(0)
        model = TaskModel(copy.deepcopy(tiny_vit.visual), 16)
        data = _data(tiny_vit)
        penalties = []

        class Record(strategies.base.SupervisedPlugin):
            def before_backward(self, strategy, **kwargs):
                penalties.append(strategy.loss.item())

        (plugin,) = s.plugins(model)
        template = make_template(model, TrainConfig(epochs=1, batch_size=16, lr=1e-2, warmup_steps=0),
                                 [plugin, Record()], "cpu")
        template.train(make_stream(["a"], data).train_stream[0])
        assert len(penalties) == 2 and plugin.start is not None
        moved = sum(((p - p0) ** 2).sum().item() for p, p0 in zip(model.encoder.parameters(), plugin.start))
        assert moved > 0
    finally:
        strategies._REGISTRY.pop("l2sp", None)
        sys.modules.pop(module.__name__, None)


@pytest.mark.parametrize("mode", ["lp", "zs"])
def test_head_init_installs_the_probe_or_the_text_embeddings(tiny_vit, mode):
    from evaluation.evaluator import SuiteEvaluator

    torch.manual_seed(0)
    model = TaskModel(copy.deepcopy(tiny_vit.visual), 16)
    data = _data(tiny_vit)
    zs = {n: torch.nn.functional.normalize(torch.randn(4, 16), dim=-1) for n in data}
    ev = SuiteEvaluator(data=data, zs_weights=zs, head_init=mode, logit_scale=50.0)
    seen = {}

    class Capture(strategies.base.SupervisedPlugin):
        def before_training_exp(self, strategy, **kwargs):
            head = strategy.model.head(strategy.experience.task_label)
            seen["w"], seen["b"] = head.weight.detach().clone(), head.bias.detach().clone()

    init = HeadInitPlugin(lambda m, t: ev.init_head(m, "ab"[t]))
    template = make_template(model, TrainConfig(epochs=1, batch_size=16), [init, Capture()], "cpu")
    template.train(make_stream(["a"], data).train_stream[0])
    if mode == "zs":
        assert torch.allclose(seen["w"], 50.0 * zs["a"]) and torch.all(seen["b"] == 0)
    else:
        w, b = head_init_weights("lp", embed_all(TaskModel(copy.deepcopy(tiny_vit.visual), 16), data["a"].x_train),
                                 data["a"].y_train, None, 1.0, 1.0)
        assert torch.allclose(seen["w"], w) and torch.allclose(seen["b"], b)
