"""The guard around an optional figure or report section: a failure there is one warning line, never
the end of the collector (a full disk excepted)."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable

from benchmark.files import no_room


@contextmanager
def optional_output(line: Callable[[Exception], str]):
    """Around the code of an optional figure or report section: if it fails, its figures are closed,
    `line(error)` is printed as one warning line and the collector goes on. A full disk (or a write refused
    for want of room: benchmark.files.no_room) is not optional: it passes through, so that the command
    stops with one line instead of a warning per file and a claim that it finished."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - optional output must never stop the collector
        import matplotlib.pyplot as plt

        plt.close("all")
        if no_room(e):
            raise
        print(f"warning: {line(e)}", file=sys.stderr)
