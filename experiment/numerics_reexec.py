"""The `numerics` setting at the command's start: the CPU kernels are chosen when torch and MKL start,
from the environment, so `numerics: portable` re-executes the command once with its variables
(benchmark/numerics.py says which and why)."""
from __future__ import annotations

import os
import sys

from benchmark import numerics

from .settings import lookup


def numerics_problem(setting: str) -> str | None:
    """Why this process cannot train with `setting` (one line), or None."""
    if numerics.setting_in_place(setting):
        return None
    wanted = " ".join(f"{k}={v}" for k, v in numerics.SETTINGS[setting].items())
    return (f"numerics {setting} needs {wanted} in the environment before torch starts; run run_benchmark.py as "
            "a command (it re-executes itself with them), or set them beforehand")


def numerics_hint(settings: dict) -> str:
    """The `numerics` setting asked for, looked up in experiment.settings.early (the configuration the
    command line gives, before it is validated and before torch is imported). Validation checks the
    value; the pre-flight refuses to train if the environment does not match it."""
    return str(lookup(settings, "numerics", "native"))


def pin_numerics(setting: str, as_command: bool) -> str | None:
    """For `numerics: portable`: re-execute this process (same interpreter, options and arguments) with
    the setting's variables, once. Returns why that failed (one line), or None: nothing to do, or (an
    in-process call of run_benchmark.main(argv), which is not ours to replace) left to the pre-flight."""
    if setting not in numerics.SETTINGS or numerics.setting_in_place(setting):
        return None  # nothing to pin (an unknown name is validation's to report)
    wanted = " ".join(f"{k}={v}" for k, v in numerics.SETTINGS[setting].items())
    if os.environ.get(numerics.REEXEC_MARKER) == str(os.getpid()):  # exec keeps the pid: this is the re-execution
        return (f"numerics {setting}: re-executed with {wanted}, but the environment lost them; "
                "is something resetting the environment at start-up?")
    if not as_command or "torch" in sys.modules:  # main(argv) called in-process: not ours to replace;
        return None                               # the pre-flight refuses to train without the environment
    env = numerics.setting_env(setting)
    env[numerics.REEXEC_MARKER] = str(os.getpid())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv), env)
    return None  # not reached
