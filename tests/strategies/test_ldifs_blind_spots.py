"""What the LDIFS term cannot see (docs/design.md, "What LDIFS does not see"), shown on the real micro model.

Two blind spots, both by construction of the reference definition, not bugs:
- normalising a map over its token axis removes any positive scale of a channel across all positions,
  so a change of each channel's magnitude (what global pooling turns into the embedding) costs nothing;
- layers after the last tap are never compared: on the micro model `conv_head`, its BatchNorm and the
  image projection (about 23% of the image tower's weights).
"""
from __future__ import annotations

import copy

import pytest
import torch

from benchmark.models import feature_taps, select_taps
from strategies.ldifs import ldifs_distance

pytestmark = pytest.mark.numerics  # every test here: `make test-numerics`


def test_a_per_channel_scale_is_invisible_on_the_token_axis_and_visible_on_the_channel_axis():
    g = torch.Generator().manual_seed(0)
    f = [torch.randn(3, 7, 5, generator=g), torch.randn(3, 4, 6, generator=g)]  # [B, N tokens, C channels]
    # a positive scale per (sample, channel), the same at every token: 0.5 .. 4.5
    scaled = [x * (0.5 + 4 * torch.rand(x.shape[0], 1, x.shape[2], generator=g)) for x in f]
    # token axis (the reference): each channel is divided by its own norm over the tokens, so the scale
    # cancels up to float32 rounding of a division (about 1e-7 per entry, squared: ~1e-14)
    assert ldifs_distance(f, scaled, norm_axis=1).item() == pytest.approx(0.0, abs=1e-10)
    # channel axis: the mix of channel magnitudes at each token changes, and the distance says so
    assert ldifs_distance(f, scaled, norm_axis=2).item() > 1e-3


def _taps_out(visual, idx, x):
    taps = feature_taps(visual)
    outs = []
    hs = [taps[i][1].register_forward_hook(lambda m, inp, out: outs.append(out.detach().clone())) for i in idx]
    with torch.no_grad():
        emb = visual(x)
    for h in hs:
        h.remove()
    return outs, emb


def test_layers_after_the_last_reference_tap_change_the_embedding_but_not_the_ldifs_term(micro_model):
    visual = copy.deepcopy(micro_model.visual).eval()
    idx = select_taps(len(feature_taps(visual)), "reference")
    x = torch.randn(4, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    before, emb0 = _taps_out(visual, idx, x)
    after_params = dict(visual.named_parameters())
    n_total = sum(p.numel() for p in visual.parameters())
    n_after = sum(p.numel() for n, p in after_params.items()
                  if n.startswith(("trunk.conv_head", "trunk.bn2", "head.")))
    assert 0.2 < n_after / n_total < 0.3  # conv_head + bn2 + projection: ~23% of the tower
    with torch.no_grad():  # change only what comes after the last tap
        visual.trunk.conv_head.weight.mul_(3.0)
        visual.head.proj.weight.add_(0.05 * torch.randn_like(visual.head.proj.weight))
    after, emb1 = _taps_out(visual, idx, x)
    assert ldifs_distance(before, after).item() == 0.0  # the same maps, bit for bit
    cos = torch.nn.functional.cosine_similarity(emb0, emb1, dim=-1)
    assert cos.max() < 0.99  # while the embedding that heads and zero-shot read has moved


def test_the_micro_models_last_tap_has_four_tokens(micro_model):
    """At 48 px the last tapped map is 2x2: the token-axis norm sees each channel's pattern over four
    positions and nothing of its magnitude, the quantity that average pooling passes on."""
    visual = micro_model.visual
    idx = select_taps(len(feature_taps(visual)), "reference")
    outs, _ = _taps_out(copy.deepcopy(visual).eval(), idx, torch.zeros(1, 3, 48, 48))
    assert [tuple(o.shape[2:]) for o in outs] == [(24, 24), (12, 12), (3, 3), (3, 3), (2, 2)]
