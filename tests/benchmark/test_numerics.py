"""Numeric paths: what a record says about the CPU's kernels, emulated paths, and `numerics: portable`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from experiment import cli
from benchmark import numerics

ROOT = Path(__file__).resolve().parents[2]
DESCRIBE = "import json; from benchmark.numerics import describe; print(json.dumps(describe()))"
TINY = ["--jobs", "1", "--orderings", "textures,digits", "--suite", "textures", "digits", "--set", "data.max_train=40",
        "--set", "data.max_test=20", "--epochs", "1", "--strategies", "ft"]


def _clean_env(**changes) -> dict:
    """This environment without any numeric-path variable, plus `changes`."""
    env = {k: v for k, v in os.environ.items() if k not in numerics.VARIABLES and k != numerics.REEXEC_MARKER}
    env.update(changes)
    return env


# Another OpenBLAS kernel family than the one this suite runs (under `--path generic` it already runs Prescott's).
OTHER_CORETYPE = "Haswell" if os.environ.get("OPENBLAS_CORETYPE", "").lower() == "prescott" else "Prescott"


@pytest.fixture(scope="module")
def generic_described() -> dict:
    """describe() in two fresh interpreters started at once (two cores), both with ATEN_CPU_CAPABILITY=default
    and no other numeric-path variable, one of them with the other OpenBLAS kernel family as well: the
    capability test reads the first; the OpenBLAS test compares the two, which differ in that alone."""
    procs = {name: subprocess.Popen([sys.executable, "-c", DESCRIBE], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, env in (("generic", _clean_env(ATEN_CPU_CAPABILITY="default")),
                               ("other_openblas", _clean_env(ATEN_CPU_CAPABILITY="default",
                                                             OPENBLAS_CORETYPE=OTHER_CORETYPE)))}
    done = {name: p.communicate(timeout=120) for name, p in procs.items()}
    assert all(p.returncode == 0 for p in procs.values()), [err for _, err in done.values()]
    return {name: json.loads(out) for name, (out, _) in done.items()}


def test_importing_the_module_does_not_start_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, benchmark.numerics; print('torch' in sys.modules)"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_describe_reports_what_decides_the_numbers(monkeypatch):
    for k in numerics.VARIABLES:
        monkeypatch.delenv(k, raising=False)
    d = numerics.describe()
    assert set(d) == {"cpu", "cpu_flags", "capability", "variables", "torch", "blas", "onednn", "openblas", "numpy_simd",
                      "fingerprint"}
    assert isinstance(d["numpy_simd"], list)
    assert d["variables"] == dict.fromkeys(numerics.VARIABLES)  # unset: None
    assert d["capability"] == torch.backends.cpu.get_cpu_capability() and d["torch"] == torch.__version__
    assert set(d["cpu_flags"]) <= set(numerics.CPU_FLAGS)
    assert len(d["fingerprint"]) == 12 and int(d["fingerprint"], 16) >= 0
    if torch.backends.mkl.is_available():
        assert d["blas"].startswith("mkl ")
    if torch.backends.mkldnn.is_available():
        assert d["onednn"].startswith("onednn ")


def test_the_fingerprint_hashes_the_kernels_not_the_cpu_name(monkeypatch):
    for k in numerics.VARIABLES:
        monkeypatch.delenv(k, raising=False)
    name, flags = numerics._cpuinfo()
    base = numerics.fingerprint()
    monkeypatch.setattr(numerics, "_cpuinfo", lambda: ("Another CPU, same flags", flags))
    assert numerics.fingerprint() == base
    monkeypatch.setattr(numerics, "_cpuinfo", lambda: (name, frozenset(flags or ()) ^ {"avx512f"}))
    assert numerics.fingerprint() != base


@pytest.mark.xdist_group("test_numerics_generic_described")  # one worker: one pair of processes for both tests
def test_a_variable_in_the_environment_changes_the_capability_and_the_fingerprint(monkeypatch, generic_described):
    for k in numerics.VARIABLES:
        monkeypatch.delenv(k, raising=False)
    here = numerics.describe()
    generic = generic_described["generic"]  # ATEN_CPU_CAPABILITY=default set before torch starts: honoured
    assert generic["capability"] == "DEFAULT" and generic["variables"]["ATEN_CPU_CAPABILITY"] == "default"
    assert generic["fingerprint"] != here["fingerprint"]
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")  # every variable is part of the hash
    assert numerics.describe()["variables"]["MKL_CBWR"] == "COMPATIBLE"
    assert numerics.fingerprint() != here["fingerprint"]


def test_a_path_sets_exactly_its_variables():
    base = {"HOME": "/h", "MKL_CBWR": "AUTO", "ATEN_CPU_CAPABILITY": "avx512"}
    assert numerics.path_env("native", base) == {"HOME": "/h"}
    assert numerics.path_env("avx2", base) == {"HOME": "/h", **numerics.PATHS["avx2"]}
    # through the CLI: the command runs with the path's environment
    show = "import os; print([os.environ.get(k) for k in %r])" % (numerics.VARIABLES,)
    out = subprocess.run([sys.executable, "-m", "benchmark.numerics", "--path", "generic", "--", sys.executable, "-c",
                          show], cwd=ROOT, env=_clean_env(MKL_CBWR="AUTO"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(["default", "SSE41", "SSE4_2", None])


def test_an_unknown_path_is_one_line_and_exit_2(capsys):
    assert numerics.main(["--path", "avx3", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown numeric path 'avx3'" in err and "native, avx2, generic" in err


def test_portable_reexecutes_the_command_with_its_environment(portable_command, tmp_path):
    """run_benchmark.py as a command re-executes itself (same pid) with the portable variables before
    torch starts, once (OpenBLAS's core type included, over the machine's own); torch then runs its
    DEFAULT kernels. The portable command is conftest's `portable_command` (the committed portable run,
    which test_layers compares bit for bit), reporting what it finds as it starts and where the checked
    command begins; the native one a stub of the rest of the command that reports the same: seconds."""
    # (the re-execution is decided before the training side's imports, which the stub skips: no torch, 1 s)
    code = ("import os, sys\nfrom experiment import cli, startup\n"
            "startup.heavy_imports = lambda *args, **kwargs: None\n"
            "print('start', os.getpid(), os.environ.get('ATEN_CPU_CAPABILITY'), flush=True)\n"
            "def checked(args, children):\n"
            "    torch = None\n"
            "    print('end', os.getpid(), '-', os.environ.get('MKL_CBWR'),\n"
            "          os.environ.get('OPENBLAS_CORETYPE'), args.numerics, flush=True)\n"
            "    return 0\n"
            "cli._checked_main = checked\n"
            "sys.exit(cli.main())\n")
    # native: nothing to pin, no re-execution
    native = subprocess.run([sys.executable, "-c", code, "--out", str(tmp_path), "--jobs", "1"], cwd=ROOT,
                            env=_clean_env(OPENBLAS_CORETYPE="Haswell"), capture_output=True, text=True, timeout=120)
    out, err, native_out, native_err = (portable_command.stdout, portable_command.stderr, native.stdout,
                                        native.stderr)
    assert portable_command.code == 0 and out.count("start") == 2 and out.count("end") == 1, (out, err)
    lines = out.split()
    pid = lines[1]
    assert lines[:3] == ["start", pid, "None"] and lines[3:6] == ["start", pid, "default"]
    assert lines[6:] == ["end", pid, "DEFAULT", "COMPATIBLE", "Prescott", "portable"]
    assert native_out.split() == ["start", native_out.split()[1], "None", "end", native_out.split()[1], "-", "None",
                                  "Haswell", "None"], (native_out, native_err)


def test_portable_needs_one_thread(tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path), *TINY, "--numerics", "portable", "--set", "threads=2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "numerics: portable needs threads: 1 (got 2)" in err, err


def test_portable_in_process_without_its_environment_refuses_to_train(tmp_path, capsys, monkeypatch):
    """main(argv) inside another program cannot re-execute it: it says what to set, and trains nothing."""
    for k in numerics.VARIABLES:
        monkeypatch.delenv(k, raising=False)
    assert cli.main(["--out", str(tmp_path), *TINY, "--set", "numerics=portable", "--set", "threads=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "numerics portable needs ATEN_CPU_CAPABILITY=default" in err, err
    assert not (tmp_path / "micro" / "runs").exists()


def test_execute_run_refuses_a_portable_run_outside_its_environment(tmp_path, monkeypatch):
    from experiment.runner import execute_run

    monkeypatch.delenv("MKL_CBWR", raising=False)
    with pytest.raises(RuntimeError, match="numerics 'portable' needs"):
        execute_run({"run_id": "x", "numerics": "portable"}, tmp_path / "x", res=None)


def test_the_imagenet_name_embeddings_are_cached_per_numeric_path(monkeypatch):
    """The micro model's projection is built from text embeddings cached on disk: another fingerprint
    reads (and would write) another file."""
    from benchmark.models import packaged as models

    cfg = json.loads((ROOT / "benchmark" / "model_configs" / "micro-effnet-lite0-minilm.json").read_text())
    asked = []

    def fake_load(path):  # a hit, so that nothing is computed
        asked.append(Path(path).name)
        return {"emb": torch.zeros(1000, int(cfg["embed_dim"]))}

    monkeypatch.setattr(models, "load_cache", fake_load)
    for k in numerics.VARIABLES:
        monkeypatch.delenv(k, raising=False)
    models._imagenet_text_embeddings(None, cfg)
    models._imagenet_text_embeddings(None, cfg)
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    models._imagenet_text_embeddings(None, cfg)
    assert asked[0] == asked[1] != asked[2] and all(a.startswith("imagenet-names-") for a in asked)


def test_emulation_sets_openblas_core_type_only_where_the_machine_has_not():
    base = {"HOME": "/h"}
    assert numerics.emulation_env("avx2", base)["OPENBLAS_CORETYPE"] == "Haswell"
    assert numerics.emulation_env("generic", base)["OPENBLAS_CORETYPE"] == "Prescott"
    assert "OPENBLAS_CORETYPE" not in numerics.emulation_env("native", base)
    # a core type the machine sets (older OpenBLAS builds need one on some CPUs) is left as it is
    assert numerics.emulation_env("avx2", {**base, "OPENBLAS_CORETYPE": "Zen"})["OPENBLAS_CORETYPE"] == "Zen"


@pytest.mark.xdist_group("test_numerics_generic_described")
def test_the_fingerprint_covers_openblas_kernels(generic_described):
    """The probes run in float64 through numpy's OpenBLAS, which picks kernels by CPU too: two processes
    whose environments differ only in OPENBLAS_CORETYPE (another kernel family than this suite's)."""
    same, other = generic_described["generic"], generic_described["other_openblas"]
    assert same["openblas"] and same["openblas"] != "None"
    assert same["fingerprint"] != other["fingerprint"]  # another OpenBLAS kernel family: another fingerprint


def test_portable_leaves_numpy_at_its_baseline_and_the_fingerprint_says_so(monkeypatch, portable_command):
    """numpy dispatches its own SIMD kernels by CPU (an AVX-512 machine's float64 exp and log round otherwise
    than an AVX2 machine's). Under the portable variables none of the pinned numpy's dispatch groups may
    remain on: a numpy whose groups are named otherwise fails here instead of silently dispatching again.
    The group in use enters the fingerprint. The process under the portable variables is conftest's
    `portable_command` (the committed portable run's command, re-executed with them): its records say
    which groups its numpy had on, its stderr what numpy said about the variables at its import."""
    from numpy._core._multiarray_umath import __cpu_dispatch__  # the groups this numpy build dispatches

    err = portable_command.stderr
    assert portable_command.code == 0, err[-2000:]
    assert "cannot disable" not in err.lower() and "warning" not in err.lower(), err
    records = sorted((portable_command.out / "portable-sample" / "runs").glob("*/records.json"))
    assert len(records) == 1
    described = json.loads(records[0].read_text())["env"]["numerics"]
    assert described["variables"] == {k: numerics.SETTINGS["portable"].get(k) for k in numerics.VARIABLES}
    simd = described["numpy_simd"]
    assert len(__cpu_dispatch__) > 0 and simd == [], described  # numpy dispatches groups, and none is left on
    # another numpy group in use is another fingerprint
    monkeypatch.setattr(numerics, "numpy_simd", lambda: [])
    baseline = numerics.describe()["fingerprint"]
    monkeypatch.setattr(numerics, "numpy_simd", lambda: ["X86_V4"])
    assert numerics.describe()["fingerprint"] != baseline


def test_emulation_pins_numpys_dispatch_like_the_machine_it_emulates():
    base = {"HOME": "/h"}
    assert numerics.emulation_env("avx2", base)["NPY_DISABLE_CPU_FEATURES"].split()[0] == "X86_V4"  # AVX2 stays
    assert "X86_V3" in numerics.emulation_env("generic", base)["NPY_DISABLE_CPU_FEATURES"].split()
    assert "NPY_DISABLE_CPU_FEATURES" not in numerics.emulation_env("native", base)


def _fake_gpu(monkeypatch, name: str):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: (9, 0))
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91002)


def test_the_feature_cache_keys_on_the_gpu_that_computed_the_features(monkeypatch):
    """Features embedded on one card (or CUDA/cuDNN version) are not another's: the cache key says
    which; on the CPU the key has no accelerator entry (the CPU's numerics are its fingerprint)."""
    from evaluation.scoring.evaluator import SuiteEvaluator

    class Keys:
        def __init__(self):
            self.seen = []

        def get(self, key, compute):
            self.seen.append(key)
            return torch.zeros(1)

    keys = Keys()
    ds = type("DS", (), {"fingerprint": "data-1"})()

    def embed(device):
        SuiteEvaluator(data={}, zs_weights=None, device=device, features=keys, model_key="m")._embed(None, ds, True)
        return keys.seen[-1]

    assert numerics.accelerator("cpu") is None and "accelerator" not in embed("cpu")
    _fake_gpu(monkeypatch, "NVIDIA H200")
    h200 = embed("cuda")
    assert numerics.accelerator("cuda:0")["gpu"] == "NVIDIA H200" and h200["accelerator"]["capability"] == [9, 0]
    _fake_gpu(monkeypatch, "NVIDIA A100-SXM4-80GB")
    assert embed("cuda")["accelerator"]["gpu"] == "NVIDIA A100-SXM4-80GB" and embed("cuda") != h200
