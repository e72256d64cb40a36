"""What Ctrl-C means for the results at the moment it comes, said in the one line printed then.

Whoever starts a phase whose interruption leaves something to know (a run half-trained, the tables
half-rebuilt) sets it here; run_benchmark.py prints it on KeyboardInterrupt.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

START_UP = "start-up: nothing was written"
_phase = START_UP


def on_sigint(signum, frame):
    """The command's Ctrl-C (installed by experiment.cli.entry and experiment.helper.entry): the first one
    stops it (KeyboardInterrupt: one line, exit 130); from then on SIGINT is ignored, so that a second
    one, in the clean-up or while the interpreter exits, neither kills the process by the signal nor
    prints a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def install_sigint() -> None:
    """`on_sigint` as the SIGINT handler, unless SIGINT was ignored when the process started (nohup, a
    background job)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_sigint)


def set_phase(text: str) -> None:
    global _phase
    _phase = text


def phase() -> str:
    return _phase


def reset() -> None:
    set_phase(START_UP)


@contextlib.contextmanager
def held(say: bool = True, at_once: bool = False):
    """Keep Ctrl-C out of the third-party packages' imports: a KeyboardInterrupt raised inside them can
    be swallowed by their own handlers and leave a module half made (seen: torch's import then failed
    with a RecursionError in numpy, or the process aborted). With `at_once` (the command, not a call of
    main() inside another program) a Ctrl-C ends the process there and then, with the one line (if
    `say`) and status 130: imports write nothing of ours. Otherwise it is raised when the block ends,
    and a second one while it is held ends the process at once."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        yield  # no handler to set from here; or Ctrl-C is ignored (nohup, a background job), and stays so
        return
    got = []

    def hold(signum, frame):
        if got or at_once:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # not a second line from a Ctrl-C during this one
            if say:
                print(f"interrupted during {phase()}", file=sys.stderr, flush=True)
            os._exit(130)
        got.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if got:
        if callable(previous):
            previous(signal.SIGINT, None)  # the command's handler, or Python's: raises KeyboardInterrupt
        raise KeyboardInterrupt
