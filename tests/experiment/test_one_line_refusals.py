"""Where one line is promised, one line: an empty cache variable, --list with a malformed preset, an
--out over the file system's limits, weights that are not a checkpoint, an address-space limit too
small for the imports, a malformed Ray address. And the plan says, in one warning line each, when a
setting makes its runs meaningless; a run without a held-out dataset prints no library warnings."""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from conftest import TINY, run_main

ROOT = Path(__file__).resolve().parents[2]



def _one_error(code, err, words):
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err[-2000:]


# ---------------------------------------------------------------- the cache's location


@pytest.mark.parametrize("env, where", [
    ({"CFBENCH_CACHE": "", "XDG_CACHE_HOME": ""}, "home"),
    ({"CFBENCH_CACHE": "", "XDG_CACHE_HOME": "relative/cache"}, "home"),
    ({"CFBENCH_CACHE": "", "XDG_CACHE_HOME": "{tmp}/xdg"}, "xdg"),
    ({"CFBENCH_CACHE": "{tmp}/mine", "XDG_CACHE_HOME": ""}, "mine"),
    ({"CFBENCH_CACHE": "", "XDG_CACHE_HOME": "", "HOME": ""}, "passwd"),
])
def test_an_empty_cache_variable_counts_as_unset(env, where, tmp_path, monkeypatch):
    import pwd

    from benchmark import process_env
    from benchmark.cache_files import cache_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v.replace("{tmp}", str(tmp_path)))
    expected = {"home": tmp_path / "home" / ".cache" / "cfbench", "xdg": tmp_path / "xdg" / "cfbench",
                "mine": tmp_path / "mine",
                "passwd": Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "cfbench"}[where]
    assert cache_dir() == expected and process_env.cache_root() == expected
    monkeypatch.delenv("MPLCONFIGDIR", raising=False)
    process_env.matplotlib_in_cache()  # matplotlib's cache goes into ours (monkeypatch restores the variable)
    assert Path(os.environ["MPLCONFIGDIR"]).is_absolute()


# ---------------------------------------------------------------- --list --config


@pytest.mark.parametrize("text, words", [
    ("strategies: 5\n", "strategies must be a list of specs"),
    ("strategies: [{lam: 1}]\n", "strategies must be a list of specs"),
    ("strategy_defaults: [1, 2]\n", "strategy_defaults must map strategy names to mappings"),
    ("strategy_defaults: {ldifs: 30}\n", "strategy_defaults must map strategy names to mappings"),
    ("model: ViT-B-32\n", "model must be a mapping"),
    ("- a\n- b\n", "expected a mapping of settings"),
    ("a: &x [1]\nb: *x\n", "anchors and aliases"),
])
def test_list_with_a_malformed_preset_is_one_line(text, words, tmp_path, capsys):
    path = tmp_path / "preset.yaml"
    path.write_text(text)
    code, out, err, _ = run_main(["--list", "--config", str(path)], capsys)
    _one_error(code, err, words)
    assert out == ""


# ---------------------------------------------------------------- --out


@pytest.mark.parametrize("mode", ["--dry-run", "--collect-only"])
def test_an_out_over_the_file_system_limits_is_one_line(mode, tmp_path, capsys):
    code, _, err, _ = run_main(["--out", str(tmp_path / ("a" * 300)), mode, *TINY], capsys)
    _one_error(code, err, "over the file system's limit of")
    deep = tmp_path.joinpath(*["b" * 200] * 21)
    code, _, err, _ = run_main(["--out", str(deep), mode, *TINY], capsys)
    _one_error(code, err, "leaves no room under the file system's limit")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- weights that are not a checkpoint


def test_weights_that_are_not_a_checkpoint_are_one_line_and_never_run(tiny_vit, tmp_path, capsys):
    import pickle

    ran = tmp_path / "ran"
    payload = tmp_path / "payload.pt"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(ran),))

    payload.write_bytes(pickle.dumps({"state_dict": Payload()}))
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    for weights in (payload, text):
        code, _, err, _ = run_main(["--out", str(tmp_path / "out"), *TINY, "--strategies", "ft", "--set", "model.name=test-tiny-vit",
                              "--set", f"model.pretrained={weights}"], capsys)
        _one_error(code, err, f"cannot load model test-tiny-vit with pretrained='{weights}': not a checkpoint of tensors")
    assert not ran.exists()


# ---------------------------------------------------------------- memory


def test_an_address_space_too_small_for_the_imports_is_one_line(tmp_path):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))

    env = {**os.environ, "CFBENCH_CACHE": str(tmp_path / "cache")}
    p = subprocess.run([sys.executable, str(ROOT / "run_benchmark.py"), "--dry-run", "--out", str(tmp_path / "o")],
                       cwd=ROOT, env=env, preexec_fn=limit, capture_output=True, text=True, timeout=120)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: out of memory: ") and "ulimit -v" in lines[0], p.stderr
    assert "1.0 GiB" in lines[0]


# ---------------------------------------------------------------- Ray addresses


@pytest.mark.parametrize("address, words", [
    ("ray://[::1", "not an address (Invalid IPv6 URL)"),
    ("head:99999", "not an address (Port out of range"),
    ("head\n:6379", "holds spaces or control characters"),
    ("head", "not an address; give auto, HOST:PORT"),
])
def test_a_malformed_ray_address_is_one_line_at_once(address, words, tmp_path, capsys):
    t0 = time.perf_counter()
    code, _, err, _ = run_main(["--out", str(tmp_path), *TINY, "--executor", "ray", "--ray-address", address], capsys)
    _one_error(code, err, words)
    assert time.perf_counter() - t0 < 20 and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the plan's warnings, a clean output


def test_a_warm_up_as_long_as_a_task_and_a_suite_at_chance_are_said_once(tmp_path, capsys):
    code, _, err, _ = run_main(["--out", str(tmp_path), *TINY, "--dry-run"], capsys)
    warn = [x for x in err.splitlines() if x.startswith("warning: ")]
    assert code == 0 and len(warn) == 1  # TINY: tasks of 2 steps under the preset's 30 warm-up steps
    assert "train.warmup_steps=30 is not shorter than the tasks digits (2 steps), textures (2 steps)" in warn[0]
    code, _, err, _ = run_main(["--out", str(tmp_path), *TINY, "--dry-run", "--set", "train.warmup_steps=0",
                          "--set", "data.max_train=12"], capsys)
    warn = [x for x in err.splitlines() if x.startswith("warning: ")]
    assert code == 0 and len(warn) == 1 and "data.max_train=12 leaves fewer than 2 training images per class of " \
                                           "digits (12 images, 10 classes): its probes and heads score about chance" in warn[0]
    code, _, err, _ = run_main(["--out", str(tmp_path), *TINY, "--dry-run", "--set", "train.warmup_steps=0"], capsys)
    assert code == 0 and "warning: " not in err


def test_a_suite_without_held_out_datasets_collects_without_library_warnings(tiny_experiment, tmp_path, capsys):
    shutil.copytree(tiny_experiment, tmp_path / "micro")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        code, _, err, _ = run_main(["--collect-only", "--out", str(tmp_path), *TINY], capsys)
    assert code == 0 and "warning" not in err.lower(), err
    assert [str(w.message) for w in seen] == []
