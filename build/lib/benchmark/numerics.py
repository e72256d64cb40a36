"""Which floating-point code path this process runs, and ways to choose another.

torch picks its CPU kernels when it starts, from what the CPU offers: ATen's vectorised kernels
(softmax, reductions, elementwise maths) by capability level, oneDNN's convolutions by ISA, MKL's
gemm and vector maths by instruction set. Each choice rounds differently, so the same config gives
different records on different CPUs. Four environment variables pin these choices; they are read
once, when the libraries initialise, so they must be in the environment before torch starts (set
them in os.environ after `import torch` and some kernels have already been chosen: re-execute).

- `ATEN_CPU_CAPABILITY`: avx512 | avx2 | default (ATen's kernels)
- `ONEDNN_MAX_CPU_ISA`: e.g. AVX512_CORE_AMX, AVX2, SSE41 (oneDNN: convolutions)
- `MKL_ENABLE_INSTRUCTIONS`: e.g. AVX2, SSE4_2 (MKL: gemm, vml exp)
- `MKL_CBWR`: e.g. COMPATIBLE (MKL's conditional bitwise reproducibility; also changes gemm)

`describe()` is what a record stores to tell "another machine" from "a bug"; its `fingerprint` hashes
exactly what decides the numbers. `python -m benchmark.numerics` prints it; `--path NAME -- CMD...`
runs CMD under one of `PATHS`. This module imports torch only inside describe(), so it can be
imported (and a process re-executed) before torch starts.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import re
import sys
from typing import Mapping

# The variables that select a numeric path, in the order describe() lists them.
VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR")

# CPU flags (as /proc/cpuinfo names them) that change which kernels the libraries pick.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "fma")

# Emulations, on this machine, of the numerics of other machines. Each is the complete setting of
# VARIABLES: a variable a path does not name is removed from the environment it runs under.
PATHS: dict[str, dict[str, str]] = {
    # Whatever this CPU offers (on an AVX-512 + AMX Xeon: the AVX-512/AMX kernels).
    "native": {},
    # An AVX2-only machine, e.g. AMD Zen 3 or an Intel desktop CPU without AVX-512.
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    # A machine with no vector extensions beyond SSE4 (ATen's scalar-compiled "default" kernels).
    "generic": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}

# numpy's and scipy's OpenBLAS (the linear probes run in float64 through them) also picks its kernels
# by CPU; OPENBLAS_CORETYPE emulates another CPU's. The emulation (`--path`) sets it only where the
# environment has not: some machines set it on purpose, because older OpenBLAS builds compute wrong
# results on their CPUs, and that choice is theirs (tests and CI never touch it).
OPENBLAS_PATHS: dict[str, str] = {"avx2": "Haswell", "generic": "Prescott"}

# The config's `numerics` setting: `native` leaves the environment alone; `portable` pins every
# library to its lowest common path and MKL to its reproducible mode (with one thread), so that the
# ISA level of the CPU no longer picks the kernels. That includes OpenBLAS: without its core type,
# portable records still differed between OpenBLAS's SkylakeX and Haswell kernels (by up to 0.26 in
# an accuracy on the micro preset). Prescott, its baseline x86-64 kernel, is correct on every such
# CPU, so overriding a machine's own OPENBLAS_CORETYPE here cannot make its results wrong.
#
# numpy has a CPU dispatch of its own: on an AVX-512 machine its float64 exp and log (the probes'
# softmax, through scikit-learn and scipy) run AVX-512 code that rounds otherwise than the scalar
# code an AVX2 machine runs. A portable run made on an Intel Xeon with AVX-512 differed from the same
# run on an AMD EPYC (AVX2) in one probe accuracy, with every torch-side number equal. numpy reads
# NPY_DISABLE_CPU_FEATURES once, at import: the names are the dispatch groups of the pinned numpy
# (2.4: X86_V3 is AVX2 + FMA, X86_V4 AVX-512); tests/test_numerics.py checks that none is left on.
NUMPY_ABOVE_BASELINE = {"avx2": "X86_V4 AVX512_ICL AVX512_SPR", "generic": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"}
SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    "portable": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                 "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "MKL_CBWR": "COMPATIBLE", "OPENBLAS_CORETYPE": "Prescott",
                 "NPY_DISABLE_CPU_FEATURES": NUMPY_ABOVE_BASELINE["generic"]},
}

# Set (to its pid, which exec keeps) in the environment of a process run_benchmark.py re-executed with
# a numerics setting, so that it never does so twice.
REEXEC_MARKER = "CFBENCH_NUMERICS_REEXEC"


def path_env(name: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: os.environ) with VARIABLES set exactly as path `name` says (KeyError if unknown)."""
    wanted = PATHS[name]
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in VARIABLES}
    env.update(wanted)
    return env


def emulation_env(name: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """path_env, plus OpenBLAS's core type for the path where `base` does not set one already."""
    env = path_env(name, base)
    if name in OPENBLAS_PATHS and "OPENBLAS_CORETYPE" not in env:
        env["OPENBLAS_CORETYPE"] = OPENBLAS_PATHS[name]
    if name in NUMPY_ABOVE_BASELINE:  # numpy's own SIMD, as that machine would dispatch it
        env["NPY_DISABLE_CPU_FEATURES"] = NUMPY_ABOVE_BASELINE[name]
    return env


def setting_in_place(setting: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether `env` (default: os.environ) already holds what the `numerics` setting needs. `native`
    needs nothing (it runs whatever path the environment gives, recorded in env.numerics)."""
    env = os.environ if env is None else env
    return all(env.get(k) == v for k, v in SETTINGS[setting].items())


def setting_env(setting: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: os.environ) with the variables of the `numerics` setting set."""
    env = dict(os.environ if base is None else base)
    env.update(SETTINGS[setting])
    return env


@functools.lru_cache(maxsize=None)
def _cpuinfo() -> tuple[str | None, frozenset[str] | None]:
    """(model name, flags) from /proc/cpuinfo; None for what it does not say (or where it is absent)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None, None
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.M)
    return (model.group(1).strip() if model else None,
            frozenset(flags.group(1).split()) if flags else None)


@functools.lru_cache(maxsize=None)
def _library_versions() -> tuple[str | None, str | None]:
    """(BLAS, oneDNN) as torch's build configuration names them, e.g. ("mkl 2024.2", "onednn 3.12.0")."""
    import torch

    show = torch.__config__.show()
    blas = None
    mkl = re.search(r"Math Kernel Library Version ([0-9.]+)", show)
    if mkl:
        blas = f"mkl {mkl.group(1)}"
    else:
        info = re.search(r"BLAS_INFO=([^,\s]+)", show)
        blas = info.group(1) if info else None
    dnn = re.search(r"(?:MKL-DNN|oneDNN|DNNL)\s+v?([0-9][0-9.]*)", show)
    return blas, (f"onednn {dnn.group(1)}" if dnn else None)


@functools.lru_cache(maxsize=None)
def _openblas() -> str | None:
    """The kernel family that numpy's and scipy's OpenBLAS picked on this CPU, as threadpoolctl reports
    it ("SkylakeX", "Haswell", "Zen", ...; several joined by "+" if the builds disagree). Versions are
    left out: which builds a process has loaded depends on what it imported so far, and the installed
    versions are pinned by requirements.txt."""
    try:
        import numpy  # noqa: F401  (loads numpy's BLAS so that threadpoolctl finds it)
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    seen = sorted({str(i.get("architecture")) for i in threadpool_info() if i.get("internal_api") == "openblas"})
    return "+".join(seen) or None


def numpy_simd() -> list[str] | None:
    """numpy's dispatched SIMD groups in use in this process (e.g. ["X86_V3"] on an AVX2 machine; [] when
    NPY_DISABLE_CPU_FEATURES leaves numpy at its baseline)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:
        return None
    return sorted(f for f in __cpu_dispatch__ if __cpu_features__.get(f))


def describe() -> dict:
    """What decides this process's CPU numerics, and its `fingerprint`: a hash of exactly the items
    that decide them (the kernel capability in effect, the variables, the relevant CPU flags, the
    torch, BLAS and oneDNN versions, and OpenBLAS's kernel family). The CPU's model name is reported but not hashed: two CPUs with
    the same flags run the same kernels. Two processes with the same fingerprint are expected to
    give the same records, bit for bit, for the same config (the thread count is in the run's id)."""
    import torch

    model, flags = _cpuinfo()
    blas, onednn = _library_versions()
    out = {
        "cpu": model or platform.processor() or platform.machine() or None,
        "cpu_flags": None if flags is None else sorted(f for f in CPU_FLAGS if f in flags),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "variables": {k: os.environ.get(k) for k in VARIABLES},
        "torch": torch.__version__,
        "blas": blas,
        "onednn": onednn,
        "openblas": _openblas(),  # the kernel family of the probes' float64 BLAS
        "numpy_simd": numpy_simd(),  # numpy's own kernels (the probes' exp and log)
    }
    decisive = {k: out[k] for k in ("cpu_flags", "capability", "variables", "torch", "blas", "onednn", "openblas",
                                    "numpy_simd")}
    blob = json.dumps(decisive, sort_keys=True, separators=(",", ":"))
    out["fingerprint"] = hashlib.sha1(blob.encode()).hexdigest()[:12]
    return out


def fingerprint() -> str:
    return describe()["fingerprint"]


def accelerator(device: str) -> dict | None:
    """What decides a GPU's numerics, for `device` (None on the CPU, whose numerics describe() covers):
    the card, its compute capability, and the CUDA and cuDNN versions. Features computed on another
    card or library are another card's floats: caches key on this, and records keep it."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        return None
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    return {"gpu": torch.cuda.get_device_name(index), "capability": list(torch.cuda.get_device_capability(index)),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, like run_benchmark.py
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(
        prog="python -m benchmark.numerics",
        description="Print what decides this machine's CPU numerics (and its fingerprint); with --path NAME "
                    "-- CMD..., run CMD under one of the emulated numeric paths.",
        epilog="example: python -m benchmark.numerics --path avx2 -- python run_benchmark.py --out /tmp/avx2")
    ap.add_argument("--path", metavar="NAME", help=f"numeric path: {', '.join(PATHS)}")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS... (default: print describe() there)")
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.path is None:
        if cmd:
            print(f"error: a command needs --path NAME ({', '.join(PATHS)})", file=sys.stderr)
            return 2
        print(json.dumps(describe(), indent=2))
        return 0
    if args.path not in PATHS:
        print(f"error: unknown numeric path {args.path!r}; known: {', '.join(PATHS)}", file=sys.stderr)
        return 2
    cmd = cmd or [sys.executable, "-m", "benchmark.numerics"]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(cmd[0], cmd, emulation_env(args.path))
    except OSError as e:
        print(f"error: cannot run {cmd[0]!r}: {e.strerror or e}", file=sys.stderr)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
