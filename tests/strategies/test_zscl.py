"""zscl's loss and weight ensemble against values worked out by hand, and its checks."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import strategies
from strategies.zscl import ZSCLPlugin, distillation, l2_to, merge_, zscl_terms


def test_distillation_terms_by_hand_one_image():
    # One image, two texts, s = 1, T = 1. Current u = (3, 0) -> (1, 0) once normalised; pre-trained
    # u0 = (0, 1); texts e1, e2. Current logits C = (1, 0), pre-trained P = (0, 1).
    # image term: p = softmax(P) = (1, e) / (1 + e); log softmax(C) = (1 - L, -L), L = log(1 + e):
    #   -(1 - L) / (1 + e) + e L / (1 + e) = L - 1 / (1 + e) = 1.3132617 - 0.2689414 = 1.0443203
    # text term: each text's distribution over one image is 1 for both models: -log 1 = 0.
    u, u0 = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    texts = torch.eye(2)
    image, text = zscl_terms(u, u0, texts, logit_scale=1.0, T=1.0)
    assert image.item() == pytest.approx(math.log(1 + math.e) - 1 / (1 + math.e), abs=1e-6)
    assert image.item() == pytest.approx(1.0443203, abs=1e-6)
    assert text.item() == pytest.approx(0.0, abs=1e-7)


def test_distillation_terms_by_hand_with_temperature_and_scale():
    # Two images, two texts, s = 2, T = 4 (s / T = 1/2 = h). C = 2 I, P = 2 (swap of I).
    # Image row 1: p = softmax((0, h)) = (a, 1 - a), a = 1 / (1 + e^h); log softmax((h, 0)) = (h - G, -G),
    # G = log(1 + e^h): CE = G - a h = 0.9740770 - 0.1887704 = 0.7853066; row 2 the same by symmetry.
    # Times T^2 = 16: 12.5649. C and P are symmetric, so the text term is the same.
    h = 0.5
    a, G = 1 / (1 + math.exp(h)), math.log(1 + math.exp(h))
    u, u0 = torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    image, text = zscl_terms(u, u0, torch.eye(2), logit_scale=2.0, T=4.0)
    assert image.item() == pytest.approx(16 * (G - a * h), rel=1e-6)
    assert image.item() == pytest.approx(12.564905, rel=1e-6)
    assert text.item() == pytest.approx(image.item(), rel=1e-6)


def test_distillation_is_zero_gradient_where_the_student_matches():
    t = torch.tensor([[1.0, 2.0, 0.5]])
    s = t.clone().requires_grad_(True)
    distillation(t, s, 2.0).backward()
    assert torch.allclose(s.grad, torch.zeros_like(s.grad), atol=1e-7)


def test_l2_and_running_mean_by_hand():
    p = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([3.0])}
    start = {"w": torch.tensor([0.0, 0.0]), "b": torch.tensor([1.0])}
    assert l2_to(p, start).item() == pytest.approx(1 + 4 + 4)
    avg = {"w": torch.tensor([0.0])}
    merge_(avg, {"w": torch.tensor([3.0])}, 1)  # (1 * 0 + 3) / 2
    assert avg["w"].item() == 1.5
    merge_(avg, {"w": torch.tensor([6.0])}, 2)  # (2 * 1.5 + 6) / 3 = mean(0, 3, 6)
    assert avg["w"].item() == 3.0


def test_weight_ensemble_members_follow_zscls_schedule():
    """A task of 4 steps with we_freq 2: members w0 (start), w1, w3 (steps c with (c - 1) % 2 == 0) and w4
    (4 % 2 == 0: in place of ZSCL's last zero-rate step): the parameter ends at their mean."""
    hp = strategies.build("zscl", {"ref_images": "photos", "ref_texts": "prompts:photos", "we_freq": 2})
    plugin = ZSCLPlugin(hp)
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(2.0)
    strategy = SimpleNamespace(model=model)
    plugin.before_training_exp(strategy)
    for c, w in enumerate([10.0, 20.0, 30.0, 40.0], start=1):
        with torch.no_grad():
            model.weight.fill_(w)  # the weights after step c
        plugin.after_training_iteration(strategy)
    plugin.after_training_exp(strategy)
    assert model.weight.item() == pytest.approx((2 + 10 + 30 + 40) / 4)
    assert plugin.members == 4


def test_without_ensemble_the_weights_stay_the_trained_ones():
    hp = strategies.build("zscl", {"ref_images": "photos", "ref_texts": "prompts:photos", "we_freq": 0})
    plugin = ZSCLPlugin(hp)
    model = torch.nn.Linear(1, 1, bias=False)
    strategy = SimpleNamespace(model=model)
    plugin.before_training_exp(strategy)
    with torch.no_grad():
        model.weight.fill_(7.0)
    plugin.after_training_iteration(strategy)
    plugin.after_training_exp(strategy)
    assert model.weight.item() == 7.0


@pytest.mark.parametrize("params, words", [
    ({"ref_images": "nosuch"}, "no registered dataset"),
    ({"ref_images": "http://x"}, "folder:"),
    ({"ref_texts": "photos"}, "prompts:"),
    ({"T": 0}, "T must be"),
    ({"we_freq": -1}, "we_freq"),
    ({"l2": -1.0}, "l2 must be"),
])
def test_bad_hyperparameters_are_one_line(params, words):
    with pytest.raises(strategies.SpecError) as e:
        strategies.build("zscl", params)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_defaults_are_zscls_script():
    hp = strategies.build("zscl")
    assert (hp.ref_batch, hp.T, hp.image_loss, hp.text_loss, hp.l2, hp.we_freq) == (64, 2.0, 1.0, 1.0, 1.0, 100)
    assert hp.ref_images == "folder:ImageNet/train" and hp.ref_texts.startswith("captions:Validation_GCC")
