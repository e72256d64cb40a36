"""The micro foundation model: real packaged weights in the right places, aligned towers."""
from __future__ import annotations

import copy

import pytest

import torch

from benchmark.data import load_task_data
from benchmark.models import TaskModel, feature_taps, select_taps
from benchmark.models.packaged import _packaged_effnet_state_dict
from benchmark.probe import accuracy

pytestmark = pytest.mark.numerics  # every test here: `make test-numerics`


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
    from experiment.runner import Resources

    cfg = {"name": "test-tiny-vit", "pretrained": None}
    torch.manual_seed(1)
    state = torch.get_rng_state()
    a = Resources().model(cfg, "cpu")
    assert torch.equal(state, torch.get_rng_state())
    torch.manual_seed(2)
    b = Resources().model(cfg, "cpu")
    for (k, va), (_, vb) in zip(a.clip.state_dict().items(), b.clip.state_dict().items()):
        assert torch.equal(va, vb), k


def test_the_micro_model_is_the_same_whatever_the_thread_count(micro_model):
    """The image projection is computed at load time (a matrix-vector product that MKL sums in another
    order on two threads): a process's first run loaded it on the default thread count, later runs on
    the previous run's `threads: 1`, and their records differed after task 2. The load is on one
    thread now, and leaves the process's thread count as it found it."""
    from benchmark.models import load_foundation_model, weights_fingerprint

    n = torch.get_num_threads()
    try:
        prints = []
        for threads in (2, 1):
            torch.set_num_threads(threads)
            fm = load_foundation_model("micro-effnet-lite0-minilm", "packaged")
            assert torch.get_num_threads() == threads
            prints.append(weights_fingerprint(fm.visual))
    finally:
        torch.set_num_threads(n)
    assert prints[0] == prints[1] == weights_fingerprint(micro_model.visual)


def test_as_tokens_normalises_a_vector_map_over_C_by_hand():
    """docs/design.md: a [B, C] map is normalised over C. Anchor (3, 4) -> (0.6, 0.8); fine-tuned (4, 3) ->
    (0.8, 0.6); d = mean over C of squared differences = (0.04 + 0.04) / 2 = 0.04. As [B, 1, C] the
    norm would run over a length-1 axis (both maps -> their signs (1, 1)) and give 0."""
    from benchmark.models import as_tokens
    from strategies.ldifs import ldifs_distance

    fa, ff = torch.tensor([[3.0, 4.0]]), torch.tensor([[4.0, 3.0]])
    assert as_tokens(fa).shape == (1, 2, 1)
    assert ldifs_distance([fa], [ff]).item() == pytest.approx(0.04, abs=1e-6)
    conv = torch.arange(24.0).view(1, 2, 3, 4)  # [B, C, H, W] -> [B, H*W, C]
    assert torch.equal(as_tokens(conv)[0, 5], conv[0, :, 1, 1])


TINY_RN = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "patch_size": None},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_rn(tmp_path_factory):
    from conftest import random_model

    return random_model(tmp_path_factory, "test-tiny-rn", TINY_RN)


def test_modified_resnet_taps_and_zero_shot_head(tiny_rn):
    names = [n for n, _ in feature_taps(tiny_rn.visual)]
    assert names == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert select_taps(len(names), "reference") == [0, 1, 2, 3, 4]
    from strategies.ldifs import _Taps

    taps = _Taps([m for _, m in feature_taps(tiny_rn.visual)], only_with_grad=False)
    out = tiny_rn.visual(torch.randn(2, 3, 64, 64))
    maps = taps.take()
    taps.remove()
    assert out.shape == (2, 16) and [m.shape[1] for m in maps] == [8, 32, 64, 128, 256]  # channels of [B, C, H, W]
    w = tiny_rn.class_embeddings(["cat", "dog", "car"], ["a photo of a {}.", "a {}."])
    assert w.shape == (3, 16) and torch.allclose(w.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_short_ldifs_run_of_a_modified_resnet_through_the_real_pipeline(tiny_rn, tmp_path):
    import io

    from experiment import config as C
    from experiment.runner import Resources, execute_run

    cfg = C.load_preset("micro")
    cfg.update(model={"name": "test-tiny-rn", "pretrained": None}, suite=["textures", "digits"],
               orderings=[["textures", "digits"]], strategies=["ldifs"], seeds=[0], threads=0,
               data={"max_train": 30, "max_test": 20, "cache_dir": str(tmp_path / "cache")})
    cfg["train"].update(epochs=1, batch_size=15, warmup_steps=1)
    run = C.plan(C.validate(cfg))[0]
    rec = execute_run(run, tmp_path / "run", Resources(), log=io.StringIO())
    assert rec["complete"] and len(rec["R"]) == 3 and len(rec["LP"][0]) == 2 and len(rec["ZS"]) == 3
    assert all(0 <= v <= 1 for row in rec["R"] for v in row)
