"""Parameter groups by depth on each model family (open_clip ViT, ModifiedResNet, the micro convnet),
the surgical strategy that uses them, and README's example strategy written with them."""
from __future__ import annotations

import copy
import re
import sys
import types
from pathlib import Path

import pytest

import strategies
from benchmark.models import TaskModel, parameter_groups
from benchmark.models.taps import feature_taps

from conftest import random_model

TINY_RN = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8, "head_width": 8},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def tiny_rn(tmp_path_factory):
    return random_model(tmp_path_factory, "test-tiny-rn", TINY_RN)


def _check_partition(visual):
    groups = parameter_groups(visual)
    seen = [id(p) for _, ps in groups for _, p in ps]
    assert len(seen) == len(set(seen)) == len(list(visual.parameters()))  # each parameter exactly once
    names = [n for n, _ in groups]
    assert names == ["stem"] + [n for n, _ in feature_taps(visual)[1:]] + ["head"]  # depth order
    return {n: [q for q, _ in ps] for n, ps in groups}


def test_vit_groups(tiny_vit):
    g = _check_partition(tiny_vit.visual)
    assert sorted(g["stem"]) == sorted(["conv1.weight", "class_embedding", "positional_embedding", "ln_pre.weight",
                                        "ln_pre.bias"])
    assert sorted(g["head"]) == ["ln_post.bias", "ln_post.weight", "proj"]
    assert len(g) == 14 and all(q.startswith("transformer.resblocks.3.") for q in g["resblocks.3"])


def test_modified_resnet_groups(tiny_rn):
    assert type(tiny_rn.visual).__name__ == "ModifiedResNet"
    g = _check_partition(tiny_rn.visual)
    assert list(g) == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    assert {q.split(".")[0] for q in g["stem"]} == {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3"}
    assert {q.split(".")[0] for q in g["head"]} == {"attnpool"}


def test_micro_convnet_groups_put_conv_stem_in_the_stem(micro_model):
    g = _check_partition(micro_model.visual)
    assert g["stem"] == ["trunk.conv_stem.weight", "trunk.bn1.weight", "trunk.bn1.bias"]
    assert {q.rsplit(".", 1)[0] for q in g["head"]} >= {"trunk.conv_head", "trunk.bn2"}
    assert list(g)[1:-1] == [f"blocks.{i}" for i in range(7)]


def test_surgical_freezes_what_it_does_not_train(micro_model):
    s = strategies.build("surgical", {"train": "first_half"})
    model = TaskModel(copy.deepcopy(micro_model.visual), micro_model.embed_dim)
    (plugin,) = s.plugins(model)
    plugin.before_training(types.SimpleNamespace(model=model))
    trained = {q for q, p in model.encoder.named_parameters() if p.requires_grad}
    groups = dict(parameter_groups(model.encoder))
    assert trained == {q for n in ["stem", "blocks.0", "blocks.1", "blocks.2", "blocks.3"] for q, _ in groups[n]}
    assert all(p.requires_grad for p in model.heads.parameters())  # heads always train
    with pytest.raises(strategies.SpecError, match="no group of this encoder; groups by depth: stem, blocks.0"):
        strategies.build("surgical", {"train": ["nope"]}).plugins(model)


def test_the_docs_example_with_groups_freezes_the_shallowest_half(micro_model, monkeypatch):
    text = (Path(__file__).resolve().parents[2] / "docs" / "strategies.md").read_text()
    code = re.search(r"```python\n(# strategies/freeze_shallow\.py\n.*?)```", text, re.S).group(1)
    strategies.available()
    monkeypatch.setattr(strategies, "_REGISTRY",
                        {k: v for k, v in strategies._REGISTRY.items() if k != "freeze_shallow"})
    module = types.ModuleType("strategies._docs_freeze_shallow")
    module.__package__ = "strategies"
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, "README.md", "exec"), module.__dict__)
    s = strategies.build("freeze_shallow", {"fraction": 0.5})
    model = TaskModel(copy.deepcopy(micro_model.visual), micro_model.embed_dim)
    (plugin,) = s.plugins(model)
    plugin.before_training(types.SimpleNamespace(model=model))
    frozen = {q for q, p in model.encoder.named_parameters() if not p.requires_grad}
    # 9 groups -> the first round(4.5) = 4: stem (conv_stem included) and blocks 0..2
    assert "trunk.conv_stem.weight" in frozen and "trunk.blocks.2.0.conv_pw.weight" in frozen
    assert "trunk.blocks.3.0.conv_pw.weight" not in frozen
