"""What Ctrl-C means for the results at the moment it comes, said in the one line printed then.

Whoever starts a phase whose interruption leaves something to know (a run half-trained, the tables
half-rebuilt) sets it here; run_benchmark.py prints it on KeyboardInterrupt.
"""
from __future__ import annotations

START_UP = "start-up: nothing was written"
_phase = START_UP


def set_phase(text: str) -> None:
    global _phase
    _phase = text


def phase() -> str:
    return _phase


def reset() -> None:
    set_phase(START_UP)
