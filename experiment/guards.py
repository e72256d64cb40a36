"""Checks of the world a command runs in, before and while it writes: results folders that cannot be
written, plans too large to start without a question, and the OSErrors a user can fix (a full disk,
no permission, a file where a folder belongs), each turned into one line naming the path."""
from __future__ import annotations

import errno
import os
from pathlib import Path

MAX_UNASKED_RUNS = 500  # plans larger than this train only with --yes


def check_writable(out: Path, experiment: str | None = None) -> None:
    """Fail before any training if results cannot be written where asked: --out, and the experiment's
    folder and its runs/ folder where they exist already."""
    from .config import ConfigError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write results there ({e.strerror or e}); "
                          "choose a writable folder") from None
    for folder in [out] + ([out / experiment, out / experiment / "runs"] if experiment else []):
        if folder != out and not (folder.exists() or folder.is_symlink()):
            continue
        try:
            if not folder.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "not a folder")
            probe = folder / f".write-test-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            what = "--out " if folder == out else ""
            raise ConfigError(f"{what}{folder}: cannot write results there ({e.strerror or e}); "
                              + ("choose a writable folder" if folder == out else
                                 "make it writable (or a folder), or choose another --out")) from None


def check_size(cfg: dict, yes: bool) -> None:
    """A plan of more than MAX_UNASKED_RUNS runs trains only with --yes; without, its size is the error."""
    from .config import ConfigError

    n = len(cfg["orderings"]) * len(cfg["strategies"]) * len(cfg["seeds"])
    if n > MAX_UNASKED_RUNS and not yes:
        raise ConfigError(f"the plan has {n} runs ({len(cfg['orderings'])} orderings x {len(cfg['strategies'])} "
                          f"strategies x {len(cfg['seeds'])} seeds), more than {MAX_UNASKED_RUNS}; --dry-run shows "
                          "them and an estimate of the time; add --yes to train them all")


_FILE_ERRORS = {
    errno.ENOSPC: "the file system is full; free space, or choose another --out (or CFBENCH_CACHE for the cache)",
    errno.EDQUOT: "the disk quota is used up; free space, or choose another --out (or CFBENCH_CACHE)",
    errno.EACCES: "not writable for this user; choose a writable --out (or CFBENCH_CACHE for the cache)",
    errno.EPERM: "not writable for this user; choose a writable --out (or CFBENCH_CACHE for the cache)",
    errno.EROFS: "on a read-only file system; choose a writable --out (or CFBENCH_CACHE for the cache)",
    errno.ENOTDIR: "a file stands where a folder belongs; move it away",
    errno.EISDIR: "a folder stands where a file belongs; move it away",
    errno.EEXIST: "a file stands where a folder belongs; move it away",
}


def file_problem(e: OSError) -> str | None:
    """One line for an OSError a user can fix (full disk, no permission, a file in a folder's place),
    naming the path; None for the others (a bug: its traceback is the report)."""
    if e.errno not in _FILE_ERRORS:
        return None
    where = e.filename if e.filename is not None else "a result or cache file"
    return f"{where}: {e.strerror or e}: {_FILE_ERRORS[e.errno]}"
