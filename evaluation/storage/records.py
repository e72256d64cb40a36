"""Run folders: config, records and a done marker (DomainBed-style), written atomically, checked
before they count, and locked while a process trains them.

A run folder `runs/<run-id>/` counts as done only when its `done` marker exists, its records parse
and have the shapes of the schema below, and its config hashes to its folder's name: a truncated,
hand-edited or copied record file is reported and the run is redone, never silently counted.

Longer than 300 lines because a run folder's integrity rules (ids, locks, done markers and their
checksums, links, the records' schema) are one contract that every executor relies on; kept in one
place so that no rule can be changed without the others in view.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from benchmark import strict_yaml
from benchmark.text import VALUE_RULE_TEXT, terminal, value_problem
from benchmark.files import FILE_MODE, atomic_write_text, stranded_temp_files

from .identity import id_of

RECORDS, CONFIG, DONE, LOCK = "records.json", "config.json", "done", "lock"
# A run's identity (what its id hashes, execution-only keys, legacy values): evaluation/storage/identity.py.


def clean_stale(experiment_dir: Path) -> list[Path]:
    """Remove what killed processes left behind: their temporary files, their run locks, and run
    folders that hold nothing else. Safe while other processes work on the same experiment."""
    removed = []
    experiment_dir = Path(experiment_dir)
    if not experiment_dir.is_dir():
        return removed
    for p in stranded_temp_files(experiment_dir):
        p.unlink(missing_ok=True)
        removed.append(p)
    runs = experiment_dir / "runs"
    for d in sorted(runs.iterdir()) if runs.is_dir() else []:
        if not d.is_dir() or link_problem(d):  # a link is left alone: never written or deleted through
            continue
        lock = RunLock(d)
        if (d / LOCK).exists() and lock.acquire(blocking=False):
            lock.release()  # a lock nobody holds: its owner died
            removed.append(d / LOCK)
        try:
            d.rmdir()  # only succeeds when empty: a run killed before it wrote anything
            removed.append(d)
        except OSError:
            pass
    return removed


class LinkError(OSError):
    """A run folder, lock or record that is a symbolic link: named, and left alone."""


def link_problem(run_dir: Path) -> str | None:
    """Why `run_dir` must be left alone (it, its lock, records, config or done marker is a symbolic
    link, or it resolves outside its runs/ folder), in a few words; None when it is a plain folder."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        return f"runs/{run_dir.name} is a symbolic link (to {os.readlink(run_dir)}); it is left alone"
    for name in (LOCK, RECORDS, CONFIG, DONE):
        if (run_dir / name).is_symlink():
            return f"runs/{run_dir.name}/{name} is a symbolic link; the run is left alone"
    try:
        inside = run_dir.resolve().parent == run_dir.parent.resolve()
    except OSError:
        inside = False
    return None if inside else f"runs/{run_dir.name} resolves outside its runs folder; it is left alone"


# ----------------------------------------------------------------------------------------------
# Locks: one per run, so that processes on the same experiment split the runs between them.


class RunLock:
    """An exclusive flock on `runs/<id>/lock`, holding the owner's pid. The kernel drops the lock when
    its process dies (kill -9 included), so a stale lock is free to take; the file is removed on release."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def acquire(self, blocking: bool = False) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        why = link_problem(self.path.parent)
        if why:
            raise LinkError(why)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return False
                raise
            try:  # the holder before us may have removed the file: then we locked an orphan; retry
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self.fd = fd
            return True

    def owner(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # before unlocking: a waiter then sees the orphan and retries
            os.close(self.fd)
            self.fd = None


# ----------------------------------------------------------------------------------------------
# The record file's schema (what readers get: `load_records` returns a `Records`), and what makes a run done.


class Penalty(BaseModel):
    """One penalty term over one task's mini-batches (strategies.base.PenaltyReporter); a diverged
    term (nan, inf) is kept as it is: it says what happened, and must not make the run unreadable."""
    model_config = ConfigDict(extra="allow", allow_inf_nan=True, strict=True)

    weight: float
    mean: float
    weighted_mean: float
    last: float | None = None
    steps: int


_Seconds = Annotated[float, Field(ge=0)]  # a time: finite and never negative


class Step(BaseModel):
    """One step of a run: step 0 is the pre-trained model, step k the model after the k-th task."""
    model_config = ConfigDict(extra="allow", allow_inf_nan=False, strict=True)

    step: Annotated[int, Field(ge=0)] | None = None
    after: str | None = None
    train_s: _Seconds | None = None
    eval_s: _Seconds | None = None
    penalties: dict[str, Penalty] | None = None  # optional: strategies with penalty terms
    loss: Any = None  # the mean training loss of each epoch of the task (a diverged one is kept as it is)


_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


class Records(BaseModel):
    """A run's records file, as readers use it (`load_records`). Types are strict ("complete": "yes" is not
    true, "0.5" is not a number), times are never negative, string hyperparameters are plain
    (benchmark.text.VALUE_RULE); every string of the file is printable (checked in check_records). Names
    may hold any printable text: every output escapes them. The config stays the mapping the run was
    planned with (evaluation/storage/identity.py; its id is the hash of it); the properties below read it."""
    model_config = ConfigDict(extra="allow", allow_inf_nan=False, strict=True)

    run_id: Annotated[str, Field(pattern=r"^[0-9a-f]{12}$")]
    config: dict[str, Any]
    ordering: list[Annotated[str, Field(min_length=1, max_length=200)]]
    suite: list[Annotated[str, Field(min_length=1, max_length=200)]]
    wall_s: _Seconds | None = None
    started: Annotated[str, Field(pattern=_UTC)] | None = None
    finished: Annotated[str, Field(pattern=_UTC)] | None = None
    R: list[list[float]]
    LP: list[list[float]]
    ZS: list[list[float]] | None = None
    # Feature drift (evaluation/scoring/drift.py; optional: runs recorded before it, or with `drift: 0`, have none):
    # {"sample": n, "taps": [L names], "ldifs": [T+1][D][L], "cka": [T+1][D][L] (null where undefined)}
    drift: dict[str, Any] | None = None
    complete: bool
    steps: list[Step] = []
    code: dict[str, str] | None = None  # evaluation/storage/code_version.py: optional (older runs lack it)
    env: Any = None  # the machine and library versions a run was made with (experiment/runner.py)
    rescored: Any = None  # {"from": run id, ...}: scored from another run's kept weights (experiment/rescore.py)
    _as_written: dict[str, Any] | None = PrivateAttr(default=None)

    # What readers of a run need from its config (check_fields in evaluation/reporting/leaderboard.py makes
    # sure that strategy.name and seed are there before a record reaches them).
    @property
    def config_strategy(self) -> dict[str, Any]:
        """The strategy section of the config: {"name": ..., **hyperparameters}."""
        return self.config["strategy"]

    @property
    def strategy_name(self) -> str:
        return self.config["strategy"]["name"]

    @property
    def params(self) -> dict[str, Any]:
        """The strategy's hyperparameters (its config section without the name)."""
        return {k: v for k, v in self.config["strategy"].items() if k != "name"}

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def train(self) -> dict[str, Any]:
        """The config's train section ({} where absent)."""
        return self.config.get("train") or {}

    @property
    def head_init(self) -> str:
        """The run's head initialisation (train.head_init; "lp", the setting's default, where absent)."""
        return str(self.train.get("head_init", "lp"))

    def as_written(self) -> dict[str, Any]:
        """The record file as parsed JSON (numbers and key order as written), for copying parts of it
        unchanged into another record (a rescored run's steps); {} for records not read from a file."""
        return self._as_written or {}

    @classmethod
    def from_json(cls, parsed: Any) -> "Records":
        """Records from a parsed record file, validated; ValueError (pydantic's) when they do not fit."""
        rec = cls.model_validate(parsed)
        rec._as_written = parsed
        return rec

    @model_validator(mode="after")
    def _shapes(self):
        strategy = self.config.get("strategy")
        bad = next((k for k, v in strategy.items() if k != "name" and value_problem(v)), None) \
            if isinstance(strategy, dict) else None
        if bad:
            raise ValueError(f"config.strategy.{bad}: a hyperparameter value must hold only {VALUE_RULE_TEXT}")
        T, D = len(self.ordering), len(self.suite)
        if T < 1 or not set(self.ordering) <= set(self.suite):
            raise ValueError("ordering must be a non-empty subset of suite")
        if len(self.R) != T + 1 or any(len(r) != T for r in self.R):
            raise ValueError(f"R must be [{T + 1}][{T}] for {T} tasks")
        for name in ("LP", "ZS"):
            m = getattr(self, name)
            if m is not None and (len(m) != T + 1 or any(len(r) != D for r in m)):
                raise ValueError(f"{name} must be [{T + 1}][{D}] for {T} tasks and {D} datasets")
        if self.drift is not None:
            _check_drift(self.drift, T, D)
        for name in ("R", "LP", "ZS"):
            for row in getattr(self, name) or []:
                if any(not (0.0 <= v <= 1.0) or math.isnan(v) for v in row):
                    raise ValueError(f"{name} holds a value outside [0, 1]")
        return self


def _check_drift(drift: dict, T: int, D: int) -> None:
    taps = drift.get("taps")
    if not isinstance(taps, list) or not taps:
        raise ValueError("drift.taps must be a non-empty list of layer names")
    for name in ("ldifs", "cka"):
        m = drift.get(name)
        if not isinstance(m, list) or len(m) != T + 1 or any(
                not isinstance(r, list) or len(r) != D or any(not isinstance(c, list) or len(c) != len(taps) for c in r)
                for r in m):
            raise ValueError(f"drift.{name} must be [{T + 1}][{D}][{len(taps)}] for {T} tasks, {D} datasets, "
                             f"{len(taps)} taps")
        for v in (v for r in m for c in r for v in c):
            ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   and math.isfinite(v) and (v >= 0 or name == "cka"))
            if not ok:
                raise ValueError(f"drift.{name} holds {v!r}")


def _unprintable(value: Any, where: str = "") -> str | None:
    """Where in a parsed record a key or string holds a character that is not printable (a terminal's
    escape sequence, a newline, a bidirectional override); None when every string is printable."""
    stack = [(value, where)]
    while stack:
        v, at = stack.pop()
        if isinstance(v, str):
            if not v.isprintable():
                return terminal(at[:120]) or "a value"
        elif isinstance(v, dict):
            for k, x in v.items():
                if isinstance(k, str) and not k.isprintable():
                    return terminal(f"{at}.{k}".lstrip(".")[:120])
                stack.append((x, f"{at}.{k}".lstrip(".")))
        elif isinstance(v, list):
            stack.extend((x, f"{at}.{i}".lstrip(".")) for i, x in enumerate(v))
    return None


def check_records(rec: Any, folder_name: str | None = None) -> str | None:
    """Why a parsed record is not a finished run of the folder it sits in; None when it is one."""
    unprintable = _unprintable(rec)
    if unprintable is not None:
        return f"records do not match the schema ({unprintable}: a string with control characters)"
    try:
        r = Records.model_validate(rec)
    except ValidationError as e:
        err = e.errors()[0]
        where = terminal(".".join(str(x) for x in err["loc"])[:120])  # keys come from the file: shown, not obeyed
        return f"records do not match the schema ({where + ': ' if where else ''}{err['msg']})"
    if not r.complete:
        return "records are marked incomplete"
    expected = id_of(r.config)
    if r.run_id != expected:
        return f"its config hashes to {expected}, not to the run id {r.run_id} it claims"
    if folder_name is not None and folder_name != r.run_id:
        return f"it holds the records of run {r.run_id} (copied from another folder?)"
    return None


def check_run(run_dir: Path) -> str | None:
    """None when `run_dir` is a finished run; otherwise why not, in a few words."""
    run_dir = Path(run_dir)
    link = link_problem(run_dir) if run_dir.exists() or run_dir.is_symlink() else None
    if link:
        return link
    done = run_dir / DONE
    if not done.exists() and not done.is_symlink():
        return "not finished (no done marker)"
    if done.is_symlink() or not done.is_file():
        return f"its {DONE} marker is not a plain file"
    try:
        text = strict_yaml.read_bounded(run_dir / RECORDS, strict_yaml.MAX_RECORDS_BYTES)
        rec = strict_yaml.loads_json(text)
    except FileNotFoundError:
        return f"{RECORDS} is missing"
    except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError and StrictYamlError are ValueErrors
        return f"{RECORDS} cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    try:
        vouched = strict_yaml.read_bounded(done, 1024).strip()
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"its {DONE} marker cannot be read ({e})"
    why = check_records(rec, run_dir.name)  # first: its reasons are the more specific (copied, incomplete)
    if why is None and not vouched and isinstance(rec, dict) and rec.get("code") is not None:
        # only records older than the checksum (no code fingerprint either) may have an empty marker
        return (f"its {DONE} marker is empty, but its records were written by code that checksums them "
                "(truncated or edited after the run finished?)")
    if why is None and vouched and vouched != records_digest(text):  # empty: a marker from before checksums
        return f"{RECORDS} no longer matches the checksum in its {DONE} marker (edited after the run finished?)"
    return why


def records_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def is_done(run_dir: Path) -> bool:
    return check_run(run_dir) is None


def mark_done(run_dir: Path) -> None:
    """The done marker holds the checksum of the records it vouches for (tamper evidence)."""
    text = strict_yaml.read_bounded(Path(run_dir) / RECORDS, strict_yaml.MAX_RECORDS_BYTES)
    atomic_write_text(Path(run_dir) / DONE, records_digest(text) + "\n")


def unmark_done(run_dir: Path) -> None:
    (Path(run_dir) / DONE).unlink(missing_ok=True)


def load_records(run_dir: Path) -> Records:
    """A run's records, read and validated (ValueError when they do not fit the schema, OSError when the
    file cannot be read): readers use the typed fields from here on."""
    return Records.from_json(strict_yaml.load_json_file(Path(run_dir) / RECORDS))


def run_dirs(experiment_dir: Path) -> list[Path]:
    runs = Path(experiment_dir) / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir() or p.is_symlink()) if runs.is_dir() else []


def finished_runs(experiment_dir: Path, quiet: bool = False) -> list[Path]:
    """Folders of the experiment's finished, valid runs. A folder whose done marker vouches for records
    that fail the checks is named in one line on stderr (unless quiet) and left out."""
    out = []
    for p in run_dirs(experiment_dir):
        why = check_run(p)
        if why is None:
            out.append(p)
        elif not quiet and ((p / DONE).exists() or link_problem(p)):
            then = "remove the link, and then " if link_problem(p) else ""
            print(f"warning: run {p.name if p.name.isprintable() else repr(p.name)} is left out of the leaderboard: "
                  f"{terminal(why)}; {then}the next command whose plan has this run (not --collect-only or --dry-run) trains "
                  "it again", file=sys.stderr)
    return out
