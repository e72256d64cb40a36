"""One test per strategy of what makes it that strategy, each failing if the strategy is wrong."""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import strategies
from benchmark.data import tensor_task_data as ImageData
from benchmark.models import TaskModel, TextSide
from benchmark.streams import make_stream
from benchmark.probe import embed_all, head_init_weights
from benchmark.training import HeadInitPlugin, TrainConfig, make_template
from strategies.base import SupervisedPlugin
from strategies.ewc import EncoderEWCPlugin
from strategies.flyp import flyp_loss
from strategies.l2sp import L2SPPlugin
from strategies.lwf import LwFPlugin
from strategies.prompt_tuning import PromptedLNPre
from strategies.wise_ft import interpolate_


pytestmark = [pytest.mark.numerics, pytest.mark.usefixtures("one_thread")]  # numerics: every test here


def _data(fm, n=32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, fm.image_size, fm.image_size, generator=g)
    y = torch.arange(n) % 4
    return {"a": ImageData("a", x, y, x[:8], y[:8], list("wxyz"), ["{}"]),
            "b": ImageData("b", x.flip(0), y.flip(0), x[:8], y[:8], list("wxyz"), ["{}"])}


def _model(fm, text=None):
    torch.manual_seed(0)
    return TaskModel(copy.deepcopy(fm.visual), fm.embed_dim, text=text)


def _train(model, plugins, tasks=("a",), epochs=1, data=None, lr=1e-3):
    """Train `tasks` in order with LP-init heads and the given plugins; return the template."""
    data = data or _data(SimpleNamespace(image_size=model.encoder.image_size[0]))
    init = HeadInitPlugin(lambda m, t: head_init_weights("lp", embed_all(m, data[tasks[t]].x_train),
                                                         data[tasks[t]].y_train, None, 1.0, 1.0))
    template = make_template(model, TrainConfig(epochs=epochs, batch_size=16, lr=lr, warmup_steps=0),
                             [init, *plugins], "cpu")
    stream = make_stream(list(tasks), data).train_stream
    for exp in stream:
        template.train(exp)
    return template


def _fake(model, exp_counter=1):
    """What a plugin's before_backward reads of the strategy."""
    return SimpleNamespace(model=model, device=torch.device("cpu"), loss=torch.zeros(()),
                           clock=SimpleNamespace(train_exp_counter=exp_counter))


def _nudge(module, eps, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(eps * torch.randn(p.shape, generator=g))


# --- EWC ----------------------------------------------------------------------------------------


def test_ewc_fisher_covers_the_encoder_only_and_the_penalty_grows_from_zero_at_the_anchor(tiny_vit):
    model = _model(tiny_vit)
    plugin = EncoderEWCPlugin(10.0, mode="separate")
    _train(model, [plugin])
    imp, saved = plugin.importances[0], plugin.saved_params[0]
    enc = {f"encoder.{n}" for n, _ in model.encoder.named_parameters()}
    assert set(imp) == set(saved) == enc  # heads are neither anchored nor weighted
    assert sum(v.data.sum().item() for v in imp.values()) > 0
    assert imp["encoder.conv1.weight"].data.abs().sum() > 0 and imp["encoder.proj"].data.abs().sum() > 0

    def penalty():
        fake = _fake(model)
        plugin.before_backward(fake)
        return fake.loss.item()

    assert penalty() == 0.0  # at the anchor
    start = copy.deepcopy(model.encoder.state_dict())
    _nudge(model.encoder, 1e-3)
    small = penalty()
    # by hand: lam * sum F * (w - w*)^2
    params = dict(model.named_parameters())
    want = 10.0 * sum((imp[k].data.double() * (params[k].detach().double() - saved[k].data.double()) ** 2).sum().item()
                      for k in enc)
    assert small == pytest.approx(want, rel=1e-4) and small > 0
    model.encoder.load_state_dict(start)
    _nudge(model.encoder, 2e-3)
    assert penalty() == pytest.approx(4 * small, rel=1e-3)  # quadratic in the distance
    _nudge(model.heads, 1.0)  # moving a head costs nothing
    assert penalty() == pytest.approx(4 * small, rel=1e-3)


def test_ewc_online_mode_keeps_one_decayed_fisher(tiny_vit):
    model = _model(tiny_vit)
    plugin = EncoderEWCPlugin(1.0, mode="online", decay_factor=0.5)
    _train(model, [plugin], tasks=("a", "b"))
    assert set(plugin.importances) == {1} and set(plugin.saved_params) == {1}
    assert all(k.startswith("encoder.") for k in plugin.importances[1])


# --- LwF ----------------------------------------------------------------------------------------


def test_lwf_is_zero_against_an_identical_teacher_and_distils_the_old_heads(tiny_vit):
    model = _model(tiny_vit)
    plugin = LwFPlugin(lam=2.0, temperature=3.0)
    _train(model, [plugin])  # after task a: the teacher is the model
    assert plugin.teacher is not None and not plugin.teacher.training
    x = _data(tiny_vit)["b"].x_train[:8]

    def term():
        fake = _fake(model)
        fake.mb_x = x
        plugin.before_training_exp(fake)
        model.embed(x)  # the training forward pass, as the template runs it
        plugin.before_backward(fake)
        plugin._out.remove()
        return fake.loss

    assert term().item() == pytest.approx(0.0, abs=1e-7)
    with torch.no_grad():
        teacher_logits = model(x, 0).double()
        model.head(0).weight.add_(0.5 * torch.randn_like(model.head(0).weight))
        student_logits = model(x, 0).double()
    got = term()
    assert got.requires_grad  # it trains the model
    q = torch.softmax(teacher_logits / 3.0, 1)
    want = 2.0 * (q * (q.log() - torch.log_softmax(student_logits / 3.0, 1))).sum(1).mean()
    # The plugin works in float32: the KL sums q * (log q - log p) over the classes, log-probabilities of
    # size ~log(4) ~ 1.4 whose float32 rounding (1.2e-7 each) survives their subtraction as an *absolute*
    # error, while the KL itself is small (~4e-3): how softmax rounds depends on the CPU's kernels (AVX2:
    # 0.0044381041 against 0.0044381647 in float64, 1.4e-5 relative). Hence an absolute floor of
    # lam * (a few ulps of 1.4) ~ 1e-6, about 2e-4 of the value: a wrong temperature or weight is off by x2 or more.
    assert got.item() == pytest.approx(want.item(), rel=1e-5, abs=1e-6) and want > 0


# --- L2SP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("anchor", ["previous", "pretrained"])
def test_l2sp_penalty_is_the_squared_distance_to_the_anchor(tiny_vit, anchor):
    model = _model(tiny_vit)
    pretrained = {n: p.detach().double().clone() for n, p in model.encoder.named_parameters()}
    plugin = L2SPPlugin(0.3, anchor)
    _train(model, [plugin])
    after_a = {n: p.detach().double().clone() for n, p in model.encoder.named_parameters()}
    fake = _fake(model)
    fake.experience = None
    plugin.before_training_exp(fake)  # entering task b
    _nudge(model.encoder, 1e-2)
    plugin.before_backward(fake)
    ref = after_a if anchor == "previous" else pretrained
    want = 0.3 * sum(((p.detach().double() - ref[n]) ** 2).sum().item() for n, p in model.encoder.named_parameters())
    # a float32 sum of squares over every encoder weight (~1e5 terms) against float64: its rounding depends on
    # the reduction kernels' order and grows with the number of terms; 1e-4 is float32's precision for such sums
    assert fake.loss.item() == pytest.approx(want, rel=1e-4) and want > 0


# --- LP-FT --------------------------------------------------------------------------------------


def test_lp_ft_leaves_the_encoder_unchanged_while_probing_then_fine_tunes(tiny_vit):
    model = _model(tiny_vit)
    (plugin,) = strategies.build("lp_ft", {"probe_epochs": 1}).plugins(model)
    seen = []

    class Snap(SupervisedPlugin):
        def before_training_exp(self, strategy, **kwargs):
            seen.append((copy.deepcopy(strategy.model.encoder.state_dict()), strategy.model.head(0).weight.clone()))

        def after_training_epoch(self, strategy, **kwargs):
            seen.append((copy.deepcopy(strategy.model.encoder.state_dict()), strategy.model.head(0).weight.clone()))

    _train(model, [plugin, Snap()], epochs=2)
    (enc0, head0), (enc1, head1), (enc2, _) = seen
    assert all(torch.equal(enc0[k], enc1[k]) for k in enc0)  # probing: the encoder did not move
    assert not torch.equal(head0, head1)  # ...while the head trained
    assert not torch.equal(enc1["conv1.weight"], enc2["conv1.weight"])  # then everything is fine-tuned
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_lp_ft_fine_tunes_with_a_fresh_warm_up_and_cosine_schedule(tiny_vit):
    """3 epochs of 2 iterations, warm-up 2, probe 1 epoch: the probing phase follows the task's schedule
    (6 iterations: 1/2, 2/2, ...); at the switch a new schedule over the remaining 4 iterations starts
    (1/2, 2/2, then cosine: cos 0 -> 1, 0.5 * (1 + cos(pi/2)) -> 1/2), with empty optimiser moments."""
    model = _model(tiny_vit)
    (plugin,) = strategies.build("lp_ft", {"probe_epochs": 1}).plugins(model)
    lrs, states = [], []

    class Rates(SupervisedPlugin):
        def before_training_iteration(self, strategy, **kwargs):
            lrs.append(strategy.optimizer.param_groups[0]["lr"])
            states.append(len(strategy.optimizer.state))

    data = _data(SimpleNamespace(image_size=model.encoder.image_size[0]))
    init = HeadInitPlugin(lambda m, t: head_init_weights("lp", embed_all(m, data["a"].x_train), data["a"].y_train,
                                                         None, 1.0, 1.0))
    template = make_template(model, TrainConfig(epochs=3, batch_size=16, lr=1e-3, warmup_steps=2),
                             [init, plugin, Rates()], "cpu")
    template.train(make_stream(["a"], data).train_stream[0])
    assert lrs == pytest.approx([x * 1e-3 for x in (0.5, 1.0, 0.5, 1.0, 1.0, 0.5)])
    assert states[2] == 0 and states[1] > 0  # the fine-tuning phase starts from fresh AdamW moments


# --- WiSE-FT ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wise_ft_alpha_zero_is_the_anchor_and_one_the_fine_tuned_encoder(tiny_vit, alpha):
    model = _model(tiny_vit)
    anchor = copy.deepcopy(model.encoder.state_dict())
    finetuned = {}

    class Capture(SupervisedPlugin):  # runs before WiSE-FT's after_training_exp: the fine-tuned weights
        def after_training_exp(self, strategy, **kwargs):
            finetuned.update(copy.deepcopy(strategy.model.encoder.state_dict()))

    (wise,) = strategies.build("wise_ft", {"alpha": alpha}).plugins(model)
    _train(model, [Capture(), wise])
    now = model.encoder.state_dict()
    want = anchor if alpha == 0 else finetuned
    assert all(torch.equal(now[k], want[k]) for k in now)
    assert not torch.equal(anchor["conv1.weight"], finetuned["conv1.weight"])


def test_wise_ft_mixes_floating_state_linearly():
    m = torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        m.weight.fill_(2.0)
        m.running_mean.fill_(4.0)
    anchor = {k: torch.zeros_like(v) for k, v in m.state_dict().items()}
    interpolate_(m, anchor, 0.25)
    assert torch.equal(m.weight, torch.full((3,), 0.5)) and torch.equal(m.running_mean, torch.full((3,), 1.0))
    assert m.num_batches_tracked.item() == 0  # integer buffers are not mixed


# --- FLYP ---------------------------------------------------------------------------------------


def test_flyp_loss_equals_a_hand_computation():
    img = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])  # normalised: [.6,.8], [1,0], [0,1]
    classes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1])
    s = 2.0
    u = [[0.6, 0.8], [1.0, 0.0], [0.0, 1.0]]
    v = [classes[c].tolist() for c in y]
    L = [[s * (u[i][0] * v[j][0] + u[i][1] * v[j][1]) for j in range(3)] for i in range(3)]
    ce = lambda row, k: -row[k] + math.log(sum(math.exp(r) for r in row))  # noqa: E731
    img2txt = sum(ce(L[i], i) for i in range(3)) / 3
    txt2img = sum(ce([L[i][j] for i in range(3)], j) for j in range(3)) / 3
    assert flyp_loss(img, classes, y, s).item() == pytest.approx((img2txt + txt2img) / 2, rel=1e-6)


def test_flyp_trains_the_encoder_towards_the_class_prompts_and_leaves_the_head_alone(tiny_vit):
    g = torch.Generator().manual_seed(3)
    emb = torch.nn.functional.normalize(torch.randn(4, 16, generator=g), dim=-1)
    model = _model(tiny_vit, TextSide(10.0, {0: emb}))
    data = _data(tiny_vit)
    (plugin,) = strategies.build("flyp").plugins(model)
    x, y = data["a"].x_train, data["a"].y_train

    def loss():
        with torch.no_grad():
            return flyp_loss(model.encoder(x), emb, y, 10.0).item()

    before = loss()
    heads = []

    class Capture(SupervisedPlugin):
        def before_training_exp(self, strategy, **kwargs):
            heads.append(strategy.model.head(0).weight.clone())

    _train(model, [Capture(), plugin], epochs=3, data=data, lr=3e-3)
    assert loss() < before
    assert torch.equal(heads[0], model.head(0).weight)  # ce = 0: the head gets no gradient, no decay


def test_flyp_refuses_a_model_without_a_text_tower(tiny_vit):
    with pytest.raises(strategies.SpecError, match=r"^strategy 'flyp' needs a model with an aligned text tower"):
        strategies.build("flyp").plugins(_model(tiny_vit, text=None))


# --- Prompt tuning ------------------------------------------------------------------------------


def test_prompt_tuning_trains_prompts_and_heads_and_no_encoder_weight(tiny_vit):
    model = _model(tiny_vit)
    original = [(p, p.detach().clone()) for p in model.encoder.parameters()]
    (plugin,) = strategies.build("prompt_tuning", {"n_prompts": 3}).plugins(model)
    assert not isinstance(model.encoder.ln_pre, PromptedLNPre)  # plugins() itself changes nothing
    prompts = []

    class Capture(SupervisedPlugin):
        def before_training_exp(self, strategy, **kwargs):
            prompts.append(strategy.model.encoder.ln_pre.prompts.detach().clone())

    _train(model, [plugin, Capture()], tasks=("a", "b"))
    wrapper = model.encoder.ln_pre
    assert isinstance(wrapper, PromptedLNPre) and wrapper.prompts.shape == (1, 3, 32)
    assert all(torch.equal(p, p0) for p, p0 in original)  # every encoder weight, as loaded
    assert not torch.equal(prompts[0], prompts[1]) and not torch.equal(prompts[1], wrapper.prompts)
    # the prompts enter the sequence after the class token: 1 + 3 + 16 patches
    seen = {}
    h = model.encoder.transformer.resblocks[0].register_forward_hook(lambda m, i, o: seen.update(shape=o.shape))
    model.eval()(_data(tiny_vit)["a"].x_test, 0)
    h.remove()
    assert seen["shape"][1] == 1 + 3 + 16


def test_prompt_tuning_refuses_a_convnet_tower(micro_model):
    model = TaskModel(micro_model.visual, micro_model.embed_dim)
    with pytest.raises(strategies.SpecError, match=r"^strategy 'prompt_tuning' needs a ViT image tower: .*TimmModel"):
        strategies.build("prompt_tuning").plugins(model)


def test_ewc_with_lam_zero_is_plain_fine_tuning_exactly(tiny_vit):
    """The Fisher pass must leave no trace on training: not the gradients, not the random stream."""
    states = []
    for plugins in ([], [EncoderEWCPlugin(0.0, mode="separate")]):
        model = _model(tiny_vit)
        torch.manual_seed(1)
        _train(model, plugins, tasks=("a", "b"))
        states.append(model.state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


# --- penalty reporting (strategies.base.PenaltyReporter) ----------------------------------------


def test_penalty_terms_are_reported_per_task_as_the_loss_received_them(tiny_vit):
    from strategies.base import penalty_summaries

    model = _model(tiny_vit)
    ewc, l2sp, lwf = EncoderEWCPlugin(10.0, mode="separate"), L2SPPlugin(0.3, "previous"), LwFPlugin(2.0, 3.0)
    _train(model, [ewc, l2sp, lwf])
    # task a (the first: no EWC anchor, no LwF teacher yet): l2sp only, at each of its 2 mini-batches
    during = penalty_summaries([ewc, l2sp, lwf])
    assert set(during) == {"l2sp"} and during["l2sp"]["steps"] == 2 and during["l2sp"]["weight"] == 0.3
    assert penalty_summaries([ewc, l2sp, lwf]) == {}  # a summary is per task: taken once
    x = _data(tiny_vit)["b"].x_train[:8]
    fake = _fake(model)
    fake.mb_x, fake.experience = x, None
    for plugin in (ewc, l2sp, lwf):
        plugin.before_training_exp(fake)  # entering task b: anchors and teacher are the model after task a
    _nudge(model.encoder, 1e-2)
    for plugin, name, weight in ((ewc, "ewc", 10.0), (l2sp, "l2sp", 0.3), (lwf, "lwf", 2.0)):
        fake.loss = torch.zeros(())
        model.embed(x)  # the training forward pass, as the template runs it
        plugin.before_backward(fake)
        s = plugin.penalty_summary()[name]
        assert s["weight"] == weight and s["steps"] == 1 and fake.loss.item() > 0, name
        assert s["weighted_mean"] == pytest.approx(fake.loss.item(), rel=1e-4)  # what the loss received
        assert s["mean"] == pytest.approx(fake.loss.item() / weight, rel=1e-4) and s["last"] == pytest.approx(s["mean"])
    lwf._out.remove()
