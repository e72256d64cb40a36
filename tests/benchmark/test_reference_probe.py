"""The reference probe (`train.probe: reference`): full-batch AdamW on L2-normalised features, worked
by hand on a small case, checked against sklearn where both must be exact, its rate choice and refits,
and its settings (validated; left out of run ids while the sklearn probe is used)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from experiment import cli
from experiment import config as C
from benchmark import reference_probe as R
from benchmark.probe import accuracy, fit_probe

# Three unit-norm points in 2-d, two classes: x1 = x3 = (1, 0) of class 0, x2 = (0, 1) of class 1.
X3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
Y3 = torch.tensor([0, 1, 0])
ZERO = (torch.zeros(2, 2), torch.zeros(2))


def test_two_adamw_steps_match_the_hand_computation():
    # From W = 0, b = 0 every softmax is (1/2, 1/2); the gradient of the mean cross-entropy with respect
    # to a sample's logits is p - onehot(y), so over N = 3 samples:
    #   dL/dW[0] = (-1/2 x1 + 1/2 x2 - 1/2 x3) / 3 = (-1/3, 1/6),  dL/dW[1] = (1/3, -1/6)
    #   dL/db    = ((-1/2) + 1/2 + (-1/2)) / 3 = -1/6 for class 0, +1/6 for class 1.
    # AdamW's first step (bias-corrected m = g, v = g^2) moves each parameter by -lr * g / |g|, here
    # -lr * sign(g) with lr = 0.1 (the decay term lr * wd * p is 0 at p = 0):
    #   W = [[0.1, -0.1], [-0.1, 0.1]], b = [0.1, -0.1].
    w, b = R.fit(X3, Y3, lr=0.1, steps=1, init=ZERO)
    assert torch.allclose(w, torch.tensor([[0.1, -0.1], [-0.1, 0.1]]), atol=1e-6)
    assert torch.allclose(b, torch.tensor([0.1, -0.1]), atol=1e-6)
    # The loss there: x1 and x3 get logits (0.2, -0.2), CE = ln(1 + e^-0.4) = 0.513015; x2 gets (0, 0),
    # CE = ln 2 = 0.693147; mean (2 * 0.513015 + 0.693147) / 3 = 0.573059.
    loss = torch.nn.functional.cross_entropy(X3 @ w.T + b, Y3)
    assert loss.item() == pytest.approx(0.573059, abs=1e-5)

    # Second step. p(x1) = p(x3) = (sigmoid(0.4), sigmoid(-0.4)) = (0.598688, 0.401312), p(x2) = (1/2, 1/2):
    #   g2(W[0,0]) = 2 * (-0.401312) / 3 = -0.267541;  g1 was -1/3.
    #   m = 0.9 * 0.1 * g1 + 0.1 * g2 = -0.0567541, m_hat = m / (1 - 0.9^2) = -0.298706
    #   v = 0.999 * 0.001 * g1^2 + 0.001 * g2^2 = 1.82578e-4, v_hat = v / (1 - 0.999^2) = 0.0913347
    #   step = 0.1 * m_hat / sqrt(v_hat) = -0.098839; decay first: 0.1 * (1 - 0.1 * 0.01) = 0.0999
    #   W[0,0] = 0.0999 + 0.098839 = 0.198739
    #   W[0,1]: g1 = g2 = 1/6, so m_hat / sqrt(v_hat) = 1: W[0,1] = -0.1 * 0.999 - 0.1 = -0.1999
    #   b[0]: g2 = (2 * (-0.401312) + 1/2) / 3 = -0.100875; m_hat = -0.132039, v_hat = 0.0189724,
    #         step = -0.095860; b[0] = 0.0999 + 0.095860 = 0.195760
    # and by symmetry W[1] = -W[0], b[1] = -b[0].
    w, b = R.fit(X3, Y3, lr=0.1, steps=2, init=ZERO)
    assert torch.allclose(w, torch.tensor([[0.198739, -0.1999], [-0.198739, 0.1999]]), atol=2e-6)
    assert torch.allclose(b, torch.tensor([0.195760, -0.195760]), atol=2e-6)


def test_features_are_l2_normalised_before_the_fit():
    # Scaling a sample changes nothing: the reference's head divides every input by its norm.
    w1, b1 = R.fit(X3, Y3, lr=0.1, steps=5, init=ZERO)
    w2, b2 = R.fit(X3 * torch.tensor([[3.0], [0.5], [7.0]]), Y3, lr=0.1, steps=5, init=ZERO)
    assert torch.allclose(w1, w2, atol=1e-6) and torch.allclose(b1, b2, atol=1e-6)


def _separable(n, seed):
    """Two well-separated Gaussian blobs per class in 8-d (three classes): linearly separable."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(8)[:3] * 4.0
    y = torch.arange(n) % 3
    return centres[y] + 0.3 * torch.randn(n, 8, generator=g), y


def test_agrees_with_sklearn_on_linearly_separable_data():
    xtr, ytr = _separable(90, 0)
    xte, yte = _separable(60, 1)
    w, b = R.fit(xtr, ytr, lr=0.1, steps=R.REFERENCE_STEPS)
    ws, bs = fit_probe(xtr, ytr, C=1.0)
    norm = torch.nn.functional.normalize
    ours, theirs = (norm(xte, dim=1) @ w.T + b).argmax(1), (xte @ ws.T + bs).argmax(1)
    assert accuracy(norm(xtr, dim=1) @ w.T + b, ytr) == 1.0 and accuracy(xtr @ ws.T + bs, ytr) == 1.0
    assert accuracy(norm(xte, dim=1) @ w.T + b, yte) == 1.0 and accuracy(xte @ ws.T + bs, yte) == 1.0
    assert torch.equal(ours, theirs)


def test_a_fit_is_a_pure_function_and_leaves_the_global_rng_alone():
    xtr, ytr = _separable(30, 0)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = R.fit(xtr, ytr, lr=0.5, steps=50)
    after = torch.rand(1)
    b = R.fit(xtr, ytr, lr=0.5, steps=50)
    assert torch.equal(before, after)  # the initialisation draws from a private generator
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_the_rate_is_chosen_on_validation_ties_go_to_the_smallest_and_the_metric_is_refitted():
    xtr, ytr = _separable(60, 0)
    xva, yva = _separable(30, 2)
    settings = {"lr": [1.0, 0.05, 0.5], "steps": 20}
    out = R.metric_and_head(xtr, ytr, xva, yva, settings, val_carved=True, n_classes=3)
    assert out["lr_metric"] == 0.05  # separable: every rate scores 100%, so the smallest wins
    assert torch.equal(out["head"][0], R.fit(xtr, ytr, 0.05, 3, 20)[0])  # the head: fitted on train
    refit = R.fit(torch.cat([xtr, xva]), torch.cat([ytr, yva]), 0.05, 3, 20)
    assert torch.equal(out["metric"][0], refit[0])  # the metric: refitted on train + validation

    fixed = R.metric_and_head(xtr, ytr, xva, yva, settings, val_carved=False, n_classes=3)
    assert torch.equal(fixed["metric"][0], out["head"][0])  # a fixed validation split is not refitted on

    # With a fixed validation split, the head's rate is chosen on a 90/10 split (seed 0) of the train
    # split, as the reference does for EuroSAT, and the head is the train split's fit at that rate.
    from benchmark.data.splits import train_val_split

    tr, va = (torch.from_numpy(i) for i in train_val_split(60, 0.1, None, 0))
    r_head, _ = R.choose(xtr[tr], ytr[tr], xtr[va], ytr[va], settings["lr"], 3, 20)
    assert fixed["lr_head"] == r_head and torch.equal(fixed["head"][0], R.fit(xtr, ytr, r_head, 3, 20)[0])
    with pytest.raises(ValueError, match="needs a validation split"):
        R.metric_and_head(xtr, ytr, None, None, settings, val_carved=True, n_classes=3)


def test_evaluator_scores_the_metric_probe_and_starts_tasks_from_the_head(tiny_vit):
    from benchmark.data import tensor_task_data
    from benchmark.models import TaskModel
    from evaluation.scoring.evaluator import SuiteEvaluator

    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, 32, 32, generator=g)
    y = torch.arange(48) % 4
    d = tensor_task_data("a", x[:32], y[:32], x[32:], y[32:], list("wxyz"), ["{}"], x_val=x[:12] + 0.05,
                         y_val=y[:12])
    model = TaskModel(copy.deepcopy(tiny_vit.visual), 16)
    settings = {"lr": [0.1, 1.0], "steps": 30}
    ev = SuiteEvaluator(data={"a": d}, zs_weights=None, probe=settings)
    row = ev.evaluate(model, ["a"], n_trained=0)
    from benchmark.probe import embed_all

    tr, va, te = embed_all(model, d.train_eval), embed_all(model, d.val), embed_all(model, d.test)
    fits = R.metric_and_head(tr, d.train_eval.targets, va, d.val.targets, settings, True, n_classes=4)
    (wm, bm), (wh, bh) = fits["metric"], fits["head"]
    assert row["LP"] == [accuracy(te @ wm.T + bm, d.test.targets)]
    assert row["R"] == [accuracy(te @ wh.T + bh, d.test.targets)]  # R[0]: the head the task starts from
    w, b = ev.init_head(model, "a")
    assert torch.equal(w, wh) and torch.equal(b, bh)


def test_settings_are_validated_and_stay_out_of_micro_run_ids():
    base = C.load_preset("micro")
    ids = [r["run_id"] for r in C.plan(C.validate(copy.deepcopy(base)))]
    assert ids == ["f97155813ff5", "f8dd0507ae79"]  # the README's and docs/expected/micro.json's runs
    explicit = copy.deepcopy(base)
    explicit["train"].update(probe="sklearn", probe_lr=[0.3], probe_steps=7)  # unused by the sklearn probe
    assert [r["run_id"] for r in C.plan(C.validate(explicit))] == ids
    ref = copy.deepcopy(base)
    ref["train"]["probe"] = "reference"
    cfg = C.validate(ref)
    assert cfg["train"]["probe_lr"] == list(R.REFERENCE_LRS) and cfg["train"]["probe_steps"] == 1000
    assert not set(ids) & {r["run_id"] for r in C.plan(cfg)}


@pytest.mark.parametrize("argv, words", [
    (["--set", "train.probe=lbfgs"], "train.probe: input should be 'sklearn' or 'reference'"),
    (["--set", "train.probe_lr=[0.1,-1]"], "train.probe_lr: input should be greater than 0 and at most 100"),
    (["--set", "train.probe_lr=[]"], "train.probe_lr: give 1 to 20 values"),
    (["--set", "train.probe_steps=0"], "train.probe_steps: input should be greater than or equal to 1"),
])
def test_bad_probe_settings_are_one_line_and_exit_2(argv, words, tmp_path, capsys):
    code = cli.main(["--out", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_probe_runs_on_the_gpu_and_agrees_with_the_cpu():
    xtr, ytr = _separable(300, 0)
    xte, yte = _separable(90, 1)
    gpu = R.fit(xtr, ytr, lr=0.1, device="cuda")
    cpu = R.fit(xtr, ytr, lr=0.1, device="cpu")
    assert torch.equal(gpu[0], R.fit(xtr, ytr, lr=0.1, device="cuda")[0])  # deterministic on the GPU
    assert torch.allclose(gpu[0], cpu[0], atol=1e-3) and torch.allclose(gpu[1], cpu[1], atol=1e-3)
    norm = torch.nn.functional.normalize(xte, dim=1)
    assert torch.equal((norm @ gpu[0].T + gpu[1]).argmax(1), (norm @ cpu[0].T + cpu[1]).argmax(1))
