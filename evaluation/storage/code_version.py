"""A fingerprint of the code that produces a run's numbers, recorded with the run (records' `code`).

Two parts, so that a warning can say what changed:
- `strategy`: SHA-1 of the strategy's own file (strategies/<file>.py, the one that registers its name);
- `package`: SHA-1 of the source every run shares: benchmark/ (data, models, training, probes),
  strategies/base.py and strategies/__init__.py (the strategy API and registry),
  evaluation/scoring/evaluator.py (the scores) and experiment/runner.py (the loop that trains and scores),
  each file's path and bytes, sorted by path.
Left out: reporting, configs, the command line and tests, which do not change a run's numbers, and
benchmark/data/writers.py (tiny datasets for the tests and the rehearsal: no run reads it).

The fingerprint is not part of the run id (ids stay stable across edits): a run whose recorded
fingerprint differs from the checkout's is *stale*; run_benchmark.py warns about stale runs and
retrains them with --retrain-stale, and report.md lists them. Pure standard library (no torch): the
reporting side reads it.
"""
from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from .records import Records

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_SOURCES = ("benchmark", "strategies/base.py", "strategies/__init__.py", "evaluation/scoring/evaluator.py",
                   "experiment/runner.py")
NOT_NUMBERS = ("benchmark/data/writers.py",)  # inside PACKAGE_SOURCES, but no run reads them


def _digest(files: list[Path], root: Path) -> str:
    h = hashlib.sha1()
    for p in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=None)
def package_hash(root: Path = ROOT) -> str:
    files = []
    for s in PACKAGE_SOURCES:
        p = root / s
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.is_file() else []
    return _digest([f for f in files if f.relative_to(root).as_posix() not in NOT_NUMBERS], root)


def strategy_file(name: str, root: Path = ROOT) -> Path | None:
    """The file under strategies/ that registers `name` (found by reading, not importing, the files)."""
    pattern = re.compile(r"@register\(\s*['\"]" + re.escape(name) + r"['\"]\s*\)")
    named = root / "strategies" / f"{name}.py"  # the file named after a strategy holds it (strategies.clash_problem)
    for p in [named, *sorted((root / "strategies").glob("*.py"))] if named.is_file() else sorted((root / "strategies").glob("*.py")):
        if pattern.search(p.read_text(encoding="utf-8", errors="replace")):
            return p
    return None


def fingerprint(strategy: str, root: Path = ROOT) -> dict[str, str]:
    """{"package": ..., "strategy": ..., "strategy_file": "strategies/<file>.py"} of the checkout."""
    p = strategy_file(strategy, root)
    return {"package": package_hash(root), "strategy": _digest([p], root) if p else "",
            "strategy_file": p.relative_to(root).as_posix() if p else ""}


def what_changed(recorded, current: dict[str, str]) -> str:
    """'' when the recorded fingerprint matches the checkout's (or none was recorded: unknown, not
    stale); otherwise what differs, e.g. 'strategies/ldifs.py' or 'package source'."""
    if not isinstance(recorded, dict):
        return ""
    out = []
    if recorded.get("strategy") != current["strategy"]:
        out.append(current["strategy_file"] or "its strategy file")
    if recorded.get("package") != current["package"]:
        out.append("package source")
    return " and ".join(out)


def stale_runs(runs: list[tuple[str, Records]], root: Path = ROOT) -> tuple[list[tuple[str, str]], int]:
    """([(run id, what changed)] of runs trained by code that differs from the checkout's, number of
    runs that recorded no fingerprint)."""
    stale, unknown, current = [], 0, {}
    for rid, rec in runs:
        code = rec.code
        if code is None:
            unknown += 1
            continue
        name = rec.strategy_name
        if name not in current:  # each strategy's file read once
            current[name] = fingerprint(name, root)
        changed = what_changed(code, current[name])
        if changed:
            stale.append((rid, changed))
    return stale, unknown


def stale_warning(stale: list[tuple[str, str]]) -> str:
    """One line naming the stale runs and the flag that retrains them."""
    by = {}
    for rid, what in stale:
        by.setdefault(what, []).append(rid)
    parts = "; ".join(f"{what} changed: {', '.join(ids)}" for what, ids in sorted(by.items()))
    return (f"{len(stale)} done run(s) were trained by other code than this checkout's ({parts}); their results are "
            "kept and reused; --retrain-stale retrains them")
