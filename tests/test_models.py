"""The micro foundation model: real packaged weights in the right places, aligned towers."""
from __future__ import annotations

import copy

import torch

from benchmark.data import load_task_data
from benchmark.models import TaskModel, _packaged_effnet_state_dict, feature_taps, select_taps
from benchmark.probe import accuracy


def test_every_packaged_effnet_tensor_lands_in_the_trunk(micro_model):
    src = [(k, v) for k, v in _packaged_effnet_state_dict().items() if not k.startswith("_fc.")]
    dst = list(micro_model.visual.trunk.state_dict().items())
    assert len(src) == len(dst) == 294
    for (ks, vs), (kd, vd) in zip(src, dst):
        assert torch.equal(vs, vd), (ks, kd)
    assert dst[0][0] == "conv_stem.weight"


def test_micro_taps_and_reference_selection(micro_model):
    names = [n for n, _ in feature_taps(micro_model.visual)]
    assert names == ["stem"] + [f"blocks.{i}" for i in range(7)]
    assert select_taps(len(names), "reference") == [0, 2, 4, 5, 7]


def test_zero_shot_beats_chance_on_textures(micro_model):
    """The ConSE-style projection aligns image and text towers: brick/grass/gravel well above 1/3."""
    fm = micro_model
    d = load_task_data("textures", fm.image_size, fm.mean, fm.std, {"max_train": 3, "max_test": 150})
    w = fm.class_embeddings(d.classnames, d.templates)
    x = torch.stack([d.test[i][0] for i in range(len(d.test))])
    with torch.no_grad():
        e = torch.nn.functional.normalize(fm.visual.eval()(x), dim=-1)
    assert accuracy(e @ w.T, d.test.targets) > 0.6
    t = fm.encode_text(["a photo of a dog.", "a photo of a cat."])
    assert torch.allclose(t.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_frozen_bn_statistics_stay_frozen_in_train_mode(micro_model):
    model = TaskModel(copy.deepcopy(micro_model.visual), 384, freeze_bn_stats=True).train()
    bn = model.encoder.trunk.bn1
    assert model.training and not bn.training
    before = bn.running_mean.clone()
    model.encoder(torch.randn(4, 3, 48, 48))
    assert torch.equal(before, bn.running_mean)
    # only the image tower is trainable; the text tower builds zero-shot heads only
    assert all(p.requires_grad for p in micro_model.visual.parameters())
    assert not any(p.requires_grad for n, p in micro_model.clip.named_parameters() if not n.startswith("visual."))


def test_a_random_init_model_is_the_same_whenever_it_is_built(tiny_vit):
    """Resources builds models from a fixed seed, leaving the global RNG as it was."""
    from benchmark.runner import Resources

    cfg = {"name": "test-tiny-vit", "pretrained": None}
    torch.manual_seed(1)
    state = torch.get_rng_state()
    a = Resources().model(cfg, "cpu")
    assert torch.equal(state, torch.get_rng_state())
    torch.manual_seed(2)
    b = Resources().model(cfg, "cpu")
    for (k, va), (_, vb) in zip(a.clip.state_dict().items(), b.clip.state_dict().items()):
        assert torch.equal(va, vb), k
