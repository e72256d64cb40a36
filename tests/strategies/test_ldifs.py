"""LDIFS: the distance against docs/design.md's formula computed by hand, and the plugin's behaviour."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from avalanche.core import SupervisedPlugin

from benchmark.data import tensor_task_data as ImageData
from benchmark.models import TaskModel, feature_taps, select_taps
from benchmark.streams import make_stream
from benchmark.training import TrainConfig, make_template
from strategies.ldifs import LDIFSPlugin, ldifs_distance


def hand_ldifs(pre: list[np.ndarray], ft: list[np.ndarray], axis: int = 1) -> float:
    """docs/design.md, literally: loops over the batch and the layers."""
    B = pre[0].shape[0]
    per_sample = []
    for b in range(B):
        ds = []
        for fp, ff in zip(pre, ft):
            a, c = fp[b], ff[b]  # [N, C]
            na = a / (np.sqrt((a ** 2).sum(axis=axis - 1, keepdims=True)) + 1e-10)
            nc = c / (np.sqrt((c ** 2).sum(axis=axis - 1, keepdims=True)) + 1e-10)
            ds.append(((na - nc) ** 2).mean())
        per_sample.append(np.mean(ds))
    return float(np.mean(per_sample))


@pytest.mark.numerics
def test_distance_matches_hand_formula():
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 50, 8), (4, 50, 8), (4, 10, 3)]
    pre = [torch.randn(*s, generator=g) for s in shapes]
    ft = [torch.randn(*s, generator=g) for s in shapes]
    got = ldifs_distance(pre, ft).item()
    want = hand_ldifs([p.double().numpy() for p in pre], [f.double().numpy() for f in ft])
    # float32 (norms, then means over 400 terms per map) against float64: 1e-4 is float32's precision for
    # reductions over hundreds of terms, whichever order the CPU's kernels sum in; a wrong axis, mean or
    # square root changes the value by far more (the two axes below differ by a factor of 4)
    assert got == pytest.approx(want, rel=1e-4)
    # the channel-axis variant is a different number, also per the formula
    got2 = ldifs_distance(pre, ft, norm_axis=2).item()
    assert got2 == pytest.approx(hand_ldifs([p.double().numpy() for p in pre], [f.double().numpy() for f in ft], 2),
                                 rel=1e-4)
    assert abs(got2 - got) > 1e-4


@pytest.mark.numerics
def test_distance_is_zero_for_equal_features_and_for_any_positive_scale():
    f = [torch.randn(3, 7, 5), torch.randn(3, 2, 4)]
    assert ldifs_distance(f, [x.clone() for x in f]).item() == 0.0
    # normalising over the token axis removes any positive scale, global or per (sample, channel):
    # the latter is a blind spot of the definition (tests/strategies/test_ldifs_blind_spots.py)
    assert ldifs_distance(f, [x * 3.0 for x in f]).item() == pytest.approx(0.0, abs=1e-12)
    assert ldifs_distance(f, [x + 1.0 for x in f]).item() > 1e-3  # a shift is not a scale: it is seen


@pytest.mark.numerics
def test_conv_maps_are_taken_as_tokens():
    a, b = torch.randn(2, 6, 3, 4), torch.randn(2, 6, 3, 4)  # [B, C, H, W]
    as_tokens = lambda t: t.flatten(2).transpose(1, 2)  # noqa: E731  [B, H*W, C]
    want = hand_ldifs([as_tokens(a).double().numpy()], [as_tokens(b).double().numpy()])
    assert ldifs_distance([a], [b]).item() == pytest.approx(want, rel=1e-5)


def test_reference_taps_on_a_12_block_vit(tiny_vit):
    taps = feature_taps(tiny_vit.visual)
    assert len(taps) == 13
    chosen = [taps[i][0] for i in select_taps(len(taps), "reference")]
    # ln_pre and the residual stream after blocks 3, 6, 9, 12 (docs/design.md)
    assert chosen == ["ln_pre", "resblocks.2", "resblocks.5", "resblocks.8", "resblocks.11"]
    assert select_taps(13, "last") == [12] and select_taps(13, "all") == list(range(13))
    assert select_taps(13, [0, -1]) == [0, 12]
    with pytest.raises(ValueError, match="0..12"):
        select_taps(13, [13])


def _tiny_data(fm, n_tasks=2, n=24, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for t in range(n_tasks):
        x = torch.randn(n, 3, fm.image_size, fm.image_size, generator=g)
        y = torch.arange(n) % k
        out[f"d{t}"] = ImageData(f"d{t}", x, y, x[:9], y[:9], [str(i) for i in range(k)], ["{}"])
    return out


class Spy(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.losses = []

    def before_backward(self, strategy, **kwargs):
        self.losses.append(strategy.loss.detach().clone())


class EndOfTask(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.states = []

    def after_training_exp(self, strategy, **kwargs):
        self.states.append(copy.deepcopy(strategy.model.encoder.state_dict()))


@pytest.mark.numerics
@pytest.mark.parametrize("anchor", ["previous", "pretrained"])
def test_plugin_adds_lam_times_distance_and_never_trains_the_anchor(tiny_vit, anchor):
    torch.manual_seed(0)
    model = TaskModel(copy.deepcopy(tiny_vit.visual), 16)
    start = copy.deepcopy(model.encoder.state_dict())
    data = _tiny_data(tiny_vit)
    stream = make_stream(["d0", "d1"], data)
    ce_spy, total_spy, ends = Spy(), Spy(), EndOfTask()
    ldifs = LDIFSPlugin(lam=10.0, anchor=anchor, taps=[0, 3, 6, 9, 12], norm_axis=1)
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-3, warmup_steps=0, grad_clip=0)
    # plugin order is call order: CE loss, then LDIFS adds its term, then the total
    template = make_template(model, cfg, [ce_spy, ldifs, total_spy, ends], "cpu")
    for exp in stream.train_stream:
        template.train(exp)

    added = [t - c for c, t in zip(ce_spy.losses, total_spy.losses)]
    assert added[0].item() == 0.0  # first step: encoder == anchor
    assert all(a.item() > 0 for a in added[1:3])  # once the weights move, the term is positive
    # the anchor never receives a gradient and never changes
    assert all(p.grad is None and not p.requires_grad for p in ldifs.anchor.parameters())
    want = ends.states[0] if anchor == "previous" else start
    for k, v in ldifs.anchor.state_dict().items():
        assert torch.equal(v, want[k]), k
    assert not torch.equal(ends.states[0]["conv1.weight"], start["conv1.weight"])  # training did move the encoder
    # hooks are removed after each task: a forward pass outside training keeps nothing
    assert ldifs._ft is None and ldifs._pre is None


@pytest.mark.numerics
def test_plugin_term_equals_formula_on_the_tapped_layers(tiny_vit):
    """Recompute one step's term independently from hooks placed by the test."""
    torch.manual_seed(0)
    model = TaskModel(copy.deepcopy(tiny_vit.visual), 16)
    data = _tiny_data(tiny_vit, n_tasks=1)
    stream = make_stream(["d0"], data)
    ce_spy, total_spy = Spy(), Spy()
    ldifs = LDIFSPlugin(lam=2.5, anchor="previous", taps=[0, 12], norm_axis=1)

    class Check(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.expected = []

        def before_backward(self, strategy, **kwargs):
            x = strategy.mb_x
            feats = {}
            for name, enc in (("pre", ldifs.anchor), ("ft", strategy.model.encoder)):
                taps = feature_taps(enc)
                outs = []
                hs = [taps[i][1].register_forward_hook(lambda m, a, o: outs.append(o)) for i in (0, 12)]
                with torch.no_grad():
                    enc.eval()
                    enc(x)
                    enc.train()
                for h in hs:
                    h.remove()
                feats[name] = [o.double().numpy() for o in outs[-2:]]
            self.expected.append(2.5 * hand_ldifs(feats["pre"], feats["ft"]))

    check = Check()
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-3, warmup_steps=0, grad_clip=0)
    template = make_template(model, cfg, [ce_spy, check, ldifs, total_spy], "cpu")
    template.train(stream.train_stream[0])
    got = [(t - c).item() for c, t in zip(ce_spy.losses, total_spy.losses)]
    assert got[1] > 0
    assert got == pytest.approx(check.expected, rel=1e-4, abs=1e-9)
