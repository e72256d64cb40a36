"""Where a run's wall time goes: named phases timed with a monotonic clock (`run_benchmark.py --profile`).

With --jobs N the table covers this process's share of the runs; its helpers are timed alike but
not printed (their wall time is this one's).

The phases nest the way the executor does (a run = step-0 scores + training + evaluation + writes);
`phase()` costs two clock reads, so it is always on and `--profile` only decides whether the table
is printed. Figures are wall seconds on a shared machine: compare proportions, not absolute values.
"""
from __future__ import annotations

import contextlib
import resource
import sys
import time
from collections import defaultdict

# Phase names in the order a run meets them; the table prints these first, then any others.
ORDER = ("start-up (imports, config)", "model load", "data load", "zero-shot text embeddings",
         "step-0 scores", "head init (probe fit)", "training", "evaluation: embeddings",
         "evaluation: probe fits", "evaluation: feature drift", "evaluation: other", "record writes", "collection (tables, plots)")

_seconds: dict[str, float] = defaultdict(float)
_counts: dict[str, int] = defaultdict(int)
_stack: list[str] = []


@contextlib.contextmanager
def phase(name: str):
    """Times the block under `name`. A phase inside another is not counted twice: its time is taken
    out of the enclosing phase, so the table's rows add up to the wall time they cover."""
    t = time.perf_counter()
    _stack.append(name)
    try:
        yield
    finally:
        dt = time.perf_counter() - t
        _stack.pop()
        _seconds[name] += dt
        _counts[name] += 1
        if _stack:
            _seconds[_stack[-1]] -= dt


def add(name: str, seconds: float) -> None:
    _seconds[name] += seconds
    _counts[name] += 1


def reset() -> None:
    _seconds.clear()
    _counts.clear()
    _stack.clear()


def snapshot() -> dict[str, tuple[float, int]]:
    return {k: (_seconds[k], _counts[k]) for k in _seconds}


def peak_memory_bytes(who: int = resource.RUSAGE_SELF) -> int:
    """Peak resident memory of this process, or (RUSAGE_CHILDREN) of the largest of its finished child
    processes (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(who).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def peak_memory_line(processes: int = 1) -> str:
    """'1.6 GiB', or with helper processes '1.6 GiB per process x 2' (the larger of ours and theirs)."""
    peak = peak_memory_bytes()
    if processes > 1:
        peak = max(peak, peak_memory_bytes(resource.RUSAGE_CHILDREN))
        return f"{peak / 2 ** 30:.1f} GiB per process x {processes}"
    return f"{peak / 2 ** 30:.1f} GiB"


def table(wall: float) -> str:
    """The breakdown as aligned text: seconds, share of `wall`, how many times each phase ran and the
    seconds of each time (a task's training, one evaluation after a task, ...)."""
    snap = snapshot()
    names = [n for n in ORDER if n in snap] + sorted(n for n in snap if n not in ORDER)
    covered = sum(snap[n][0] for n in names)
    lines = [f"{'phase':<30} {'seconds':>8} {'share':>6} {'times':>6} {'each':>7}"]
    for n in names:
        s, c = snap[n]
        lines.append(f"{n:<30} {s:8.1f} {100 * s / wall if wall else 0:5.1f}% {c:6d} {s / max(c, 1):7.2f}")
    lines.append(f"{'(not in a phase)':<30} {wall - covered:8.1f} {100 * (wall - covered) / wall if wall else 0:5.1f}%")
    lines.append(f"{'wall':<30} {wall:8.1f} 100.0%")
    lines.append(f"peak memory (resident) of this process: {peak_memory_bytes() / 2 ** 30:.2f} GiB")
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """'2 min 05 s', or '42 s' under a minute."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"
