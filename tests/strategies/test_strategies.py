"""The strategy registry, and one smoke test over every registered strategy (DomainBed-style)."""
from __future__ import annotations

import copy
import dataclasses
import io
import math
import sys

import pytest
import torch

import strategies
from benchmark.data import tensor_task_data as ImageData
from benchmark.models import TaskModel, TextSide, text_side
from experiment.runner import Resources, execute_run
from benchmark.streams import make_stream
from benchmark.probe import embed_all, head_init_weights
from benchmark.training import HeadInitPlugin, TrainConfig, make_template


# The strategies that ship with the suite: each must run on both test models (prompt tuning refuses the
# convnet). A strategy file added by a user is smoke-tested too, and may refuse a model in one line.
BUILTIN = {"ft", "ldifs", "ewc", "lwf", "l2sp", "lp_ft", "wise_ft", "flyp", "prompt_tuning", "zscl"}
# Hyperparameters for strategies whose defaults name inputs a test machine lacks (zscl's reference set:
# ImageNet and Conceptual Captions): an embedded dataset instead.
SMOKE = {"zscl": {"ref_images": "textures", "ref_texts": "prompts:textures", "ref_batch": 4, "we_freq": 1}}


def test_registry_lists_the_builtin_strategies():
    assert BUILTIN <= set(strategies.available())
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
    for name, key, bad in [("ldifs", "lam", float("nan")), ("ewc", "lam", float("inf")), ("wise_ft", "alpha", 1.5),
                           ("lwf", "temperature", 0.0), ("l2sp", "lam", -1e-3), ("flyp", "ce", float("-inf")),
                           ("lp_ft", "probe_epochs", -1), ("prompt_tuning", "n_prompts", 0), ("ewc", "mode", "x")]:
        with pytest.raises(strategies.SpecError, match=f"^strategy '{name}': {key} must be"):
            strategies.build(name, {key: bad})


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



pytestmark = pytest.mark.usefixtures("one_thread")


def _data(fm, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 3, fm.image_size, fm.image_size, generator=g)
    y = torch.arange(32) % 4
    return {"a": ImageData("a", x, y, x[:8], y[:8], list("wxyz"), ["{}"]),
            "b": ImageData("b", x.flip(0), y, x[:8], y[:8], list("wxyz"), ["{}"])}


class _TinyResources(Resources):
    """The real executor's resources, serving a given model and in-memory datasets."""

    def __init__(self, fm, data):
        super().__init__()
        self.fm, self.tiny = fm, data

    def model(self, mcfg, device):
        return self.fm

    def data(self, name, fm, dcfg):
        return self.tiny[name]


def _run_config(strategy: dict, head_init: str, freeze_bn_stats: bool = False) -> dict:
    run = {"model": {"name": "tiny", "freeze_bn_stats": freeze_bn_stats}, "suite": ["a", "b"], "data": {},
           "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.1, "warmup_steps": 1,
                     "grad_clip": 1.0, "head_init": head_init, "probe_C": 1.0},
           "ordering": ["a", "b"], "strategy": strategy, "seed": 0}
    return {"run_id": "smoke", **run, "device": "cpu", "threads": 0}


def _smoke(fm, name, head_init, tmp_path, freeze_bn_stats=False):
    """Two tiny experiences through the real executor: records written, loss finite, something trained."""
    strategy = strategies.build(name, SMOKE.get(name))
    data = {k: ImageData(k, d.x_train[:16], d.y_train[:16], d.x_test[:4], d.y_test[:4], d.classnames, d.templates)
            for k, d in _data(fm).items()}
    probe = TaskModel(fm.visual, fm.embed_dim, text=text_side(fm))
    try:
        strategy.plugins(probe)
    except strategies.SpecError as e:  # a strategy may refuse a model, in one line, before any run
        assert "\n" not in str(e) and str(e).startswith(f"strategy {name!r}")
        return None
    losses, changed = [], []

    class Watch(strategies.base.SupervisedPlugin):
        def before_training_exp(self, strategy, **kwargs):
            self.start = {k: v.detach().clone() for k, v in strategy.model.state_dict().items()}

        def after_training_iteration(self, strategy, **kwargs):
            losses.append(strategy.loss.item())

        def after_training_exp(self, strategy, **kwargs):
            now = strategy.model.state_dict()
            changed.append(any(not torch.equal(v, now[k]) for k, v in self.start.items()))

    import experiment.runner as runner

    real = runner.make_template
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "make_template", lambda model, cfg, plugins, device, **kw: real(model, cfg, [*plugins, Watch()], device, **kw))
        rec = execute_run(_run_config(strategies.to_config(strategy), head_init, freeze_bn_stats), tmp_path / name,
                          _TinyResources(fm, data), log=io.StringIO())
    assert (tmp_path / name / "done").exists() and rec["complete"]
    assert len(rec["R"]) == 3 and all(0 <= v <= 1 for row in rec["R"] + rec["LP"] for v in row)
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert changed == [True, True]  # every task trained some weight (encoder, prompts or head)
    return rec


@pytest.mark.parametrize("head_init", ["lp", "zs"])
@pytest.mark.parametrize("name", strategies.available())
def test_every_strategy_trains_two_tasks_on_a_vit(tiny_vit, name, head_init, tmp_path):
    rec = _smoke(tiny_vit, name, head_init, tmp_path)
    assert rec is not None or name not in BUILTIN, f"{name} refused an open_clip ViT with a text tower"


@pytest.mark.numerics
@pytest.mark.parametrize("name", strategies.available())
def test_every_strategy_trains_two_tasks_on_the_micro_convnet(micro_model, name):
    """The micro model's timm EfficientNet with frozen BatchNorm statistics (prompt tuning refuses it).
    The template alone, with ZS-init heads: the executor's path is the ViT test's, and probes are slow."""
    fm = micro_model
    g = torch.Generator().manual_seed(0)
    emb = {t: torch.nn.functional.normalize(torch.randn(4, fm.embed_dim, generator=g), dim=-1) for t in (0, 1)}
    model = TaskModel(copy.deepcopy(fm.visual), fm.embed_dim, freeze_bn_stats=True, text=TextSide(10.0, emb))
    bn = {k: v.clone() for k, v in model.encoder.state_dict().items() if "running_" in k}
    from benchmark.reference_set import reference_set

    model.reference_set = lambda images, texts: reference_set(images, texts, fm, {}, "cpu")  # as the runner sets it
    try:
        plugins = strategies.build(name, SMOKE.get(name)).plugins(model)
    except strategies.SpecError as e:
        assert "\n" not in str(e)
        assert name not in BUILTIN or name == "prompt_tuning"
        return
    assert name != "prompt_tuning"
    data = {k: ImageData(k, d.x_train[:16], d.y_train[:16], d.x_test[:4], d.y_test[:4], d.classnames, d.templates)
            for k, d in _data(fm).items()}
    init = HeadInitPlugin(lambda m, t: head_init_weights("zs", None, None, emb[t], 10.0, 1.0))
    losses = []

    class Record(strategies.base.SupervisedPlugin):
        def after_training_iteration(self, strategy, **kwargs):
            losses.append(strategy.loss.item())

    template = make_template(model, TrainConfig(epochs=1, batch_size=8, lr=1e-3, warmup_steps=1),
                             [init, *plugins, Record()], "cpu")
    for exp in make_stream(["a", "b"], data).train_stream:
        template.train(exp)
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    now = model.encoder.state_dict()
    assert all(torch.equal(v, now[k]) for k, v in bn.items())  # BatchNorm statistics stay the pre-trained ones
    assert model(data["a"].x_test, 0).shape == (4, 4)


def test_the_readme_example_strategy_works(tiny_vit, monkeypatch):
    """The 'Adding a strategy' example in README.md, executed as if it were strategies/embed_pull.py: it
    registers, validates, and its plugin reads this step's embeddings and batch. At the first step the
    encoder is still the pre-trained one, so the pull is 0; after one update it is not."""
    import re
    import types

    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = re.search(r"```python\n(# strategies/embed_pull\.py\n.*?)```", text, re.S).group(1)
    # A user's own embed_pull.py must not make this test fail: the example registers into a copy of the registry.
    strategies.available()
    monkeypatch.setattr(strategies, "_REGISTRY", {k: v for k, v in strategies._REGISTRY.items() if k != "embed_pull"})
    module = types.ModuleType("strategies._readme_embed_pull")
    module.__package__ = "strategies"
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look their module up there
    exec(compile(code, "README.md", "exec"), module.__dict__)
    s = strategies.build("embed_pull", {"lam": 2})
    assert s.lam == 2.0
    with pytest.raises(strategies.SpecError, match="lam must be >= 0"):
        strategies.build("embed_pull", {"lam": -1})
    torch.manual_seed(0)
    model = TaskModel(copy.deepcopy(tiny_vit.visual), 16)
    data = _data(tiny_vit)
    terms = []

    class Record(strategies.base.SupervisedPlugin):
        def before_backward(self, strategy, **kwargs):
            terms.append(plugin.__dict__["_penalties"]["embed_pull"][3].item())  # the last unweighted term

    (plugin,) = s.plugins(model)
    template = make_template(model, TrainConfig(epochs=2, batch_size=16, lr=1e-2, warmup_steps=0),
                             [plugin, Record()], "cpu")
    template.train(make_stream(["a"], data).train_stream[0])
    assert len(terms) == 4
    assert terms[0] < 1e-8 < terms[-1]  # the anchor is the pre-trained encoder, the embedding this step's
    summary = plugin.penalty_summary()["embed_pull"]
    assert summary["steps"] == 4 and summary["weight"] == 2.0


@pytest.mark.numerics
@pytest.mark.parametrize("mode", ["lp", "zs"])
def test_head_init_installs_the_probe_or_the_text_embeddings(tiny_vit, mode):
    from evaluation.scoring.evaluator import SuiteEvaluator

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
