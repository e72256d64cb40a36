"""The throughput settings (issue: GPU throughput): tf32 as a precision, LDIFS's anchor pass under bf16
autocast, torch.compile of the encoder, and the throughput script; checked on the CPU with a tiny ViT
(their speed is measured on a GPU by scripts/gpu_throughput.py, not here)."""
from __future__ import annotations

import copy
import functools
import json

import pytest
import torch
import torch.nn.functional as F

from benchmark.models import TaskModel
from benchmark.precision import autocast, matmul_precision
from benchmark.training import TrainConfig, compile_encoder
from experiment import config as C
from strategies.ldifs import LDIFSPlugin


def test_tf32_is_on_inside_the_run_only_and_restored_after_an_error():
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    with matmul_precision("fp32"):
        assert torch.get_float32_matmul_precision() == before[0]
    with pytest.raises(RuntimeError):
        with matmul_precision("tf32"):
            assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.allow_tf32
            raise RuntimeError("a run that fails")
    assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == before


def test_anchor_autocast_needs_bf16_and_the_new_settings_keep_old_run_ids():
    with pytest.raises(ValueError, match="needs precision: bf16"):
        TrainConfig(precision="fp32", anchor_autocast=True)
    with pytest.raises(C.ConfigError, match="train: anchor_autocast runs frozen forward passes"):
        C.validate({**C.load_preset("micro"), "train": {**C.load_preset("micro")["train"], "anchor_autocast": True}})
    base = C.load_preset("micro")
    ids = [r["run_id"] for r in C.plan(C.validate(base))]
    assert ids == ["f97155813ff5", "f8dd0507ae79"]  # docs/expected/micro.json: defaults leave ids alone
    for key, value in (("compile", "default"), ("precision", "tf32")):
        cfg = copy.deepcopy(base)
        cfg["train"][key] = value
        other = [r["run_id"] for r in C.plan(C.validate(cfg))]
        assert not set(other) & set(ids), key  # a setting that changes the floats changes the id


class _Step:
    def __init__(self, model, context):
        self.model, self.mb_x, self.loss, self.frozen_forward_context = model, None, None, context


def _ldifs_term(tiny_vit, context) -> tuple[float, set]:
    torch.manual_seed(0)
    model = TaskModel(copy.deepcopy(tiny_vit.visual), tiny_vit.embed_dim)
    plugin = LDIFSPlugin(lam=1.0, anchor="previous", taps=[0, 6, 12], norm_axis=1)
    step = _Step(model, context)
    plugin.before_training_exp(step)
    dtypes = set()
    hooks = [plugin.anchor.transformer.resblocks[5].register_forward_hook(lambda m, i, o: dtypes.add(o.dtype))]
    with torch.no_grad():  # the fine-tuned encoder moves away from its anchor
        for p in model.encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    step.mb_x = torch.randn(4, 3, 32, 32)
    model.embed(step.mb_x)
    step.loss = torch.zeros(())
    plugin.before_backward(step)
    for h in hooks:
        h.remove()
    plugin.after_training_exp(step)
    return float(step.loss.detach()), dtypes


def test_the_ldifs_anchor_pass_runs_in_bf16_only_when_asked_and_moves_the_term_little(tiny_vit, one_thread):
    full, full_dtypes = _ldifs_term(tiny_vit, lambda: autocast("cpu", "fp32"))
    half, half_dtypes = _ldifs_term(tiny_vit, lambda: autocast("cpu", "bf16"))
    legacy, _ = _ldifs_term(tiny_vit, None)  # a template without the attribute: full precision
    assert full_dtypes == {torch.float32} and half_dtypes == {torch.bfloat16}
    assert legacy == full > 0
    # bf16 keeps 8 bits of mantissa: the anchor's features move by about 2^-8 relative, the term by a
    # few percent of itself at this distance; a wrong cast (or none) would give 0 or the same value.
    assert half != full and abs(half - full) / full < 0.1


def test_compile_wraps_the_encoder_in_place_and_computes_the_same(tiny_vit, monkeypatch, one_thread):
    eager = functools.partial(torch.compile, backend="eager")  # inductor's C++ build takes minutes here
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: eager(fn))
    torch.manual_seed(0)
    model = TaskModel(copy.deepcopy(tiny_vit.visual), tiny_vit.embed_dim)
    x = torch.randn(2, 3, 32, 32)
    ref = model.embed(x)
    compile_encoder(model, "off")
    assert getattr(model.encoder, "_compiled_call_impl", None) is None
    taps = []
    model.encoder.transformer.resblocks[3].register_forward_hook(lambda m, i, o: taps.append(o.shape))
    compile_encoder(model, "default")
    assert model.encoder._compiled_call_impl is not None
    out = model.embed(x)
    assert torch.allclose(out, ref, atol=1e-6) and taps  # same floats; feature taps still fire
    F.mse_loss(out, torch.zeros_like(out)).backward()  # and it trains
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)


def test_the_throughput_script_prints_ceiling_real_path_evaluation_and_concurrency(tmp_path, forked, monkeypatch):
    import subprocess
    import sys
    import types

    from conftest import TINY_VIT

    (tmp_path / "tp-tiny-vit.json").write_text(json.dumps(TINY_VIT))
    out = tmp_path / "figures.json"
    import scripts.gpu_throughput as script
    from scripts.gpu_throughput import main

    started = []

    def popen(cmd, **kwargs):  # the command line the script starts, as a process forked after the imports
        assert cmd[:2] == [sys.executable, script.__file__] and kwargs == {"stdout": subprocess.PIPE, "text": True}
        started.append(cmd[2:])
        return forked.run(cmd[2:], script=cmd[1])

    monkeypatch.setattr(script, "subprocess", types.SimpleNamespace(Popen=popen, PIPE=subprocess.PIPE))
    # in this process (its imports are done); the concurrency figure still starts a process of its own,
    # `python scripts/gpu_throughput.py --one-ceiling ...`, forked from an interpreter that has imported
    # the project (tests/forked.py) instead of a fresh one (12 CPU-s of imports)
    argv = ["--device", "cpu", "--model", "tp-tiny-vit", "--model-config", str(tmp_path / "tp-tiny-vit.json"),
            "--batch", "4", "--eval-batch", "8", "--steps", "2", "--warmup", "1", "--workers", "0",
            "--variants", "ft:tf32", "ldifs:bf16:anchor", "--concurrent", "1", "--peak-tflops", "1", "1", "1",
            "--json", str(out)]
    assert main(argv) == 0
    fig = json.loads(out.read_text())
    assert [(r["strategy"], r["precision"]) for r in fig["rows"]] == [("ft", "tf32"), ("ldifs", "bf16+anchor")]
    for r in fig["rows"]:
        assert r["ceiling"] > 0 and r["real"] > 0 and r["eval"] > 0 and r["gflop_per_image"] > 0
        assert r["real_over_ceiling"] == pytest.approx(r["real"] / r["ceiling"], rel=0.05, abs=0.05)  # rounded rates
        assert r["mfu"] == pytest.approx(r["tflops"] / 1.0, abs=0.01)  # both rounded
    ft, ldifs = fig["rows"]
    assert ldifs["gflop_per_image"] > ft["gflop_per_image"]  # the anchor's forward pass is counted
    assert fig["concurrent"][0]["processes"] == 1 and fig["concurrent"][0]["images_per_s"] > 0
    assert len(started) == 1 and started[0][0] == "--one-ceiling"
