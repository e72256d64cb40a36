"""Checks of the world a command runs in, before and while it writes: results folders that cannot be
written, plans too large to start without a question, and the OSErrors a user can fix (a full disk,
no permission, a file where a folder belongs), each turned into one line naming the path."""
from __future__ import annotations

import errno
import os
from pathlib import Path

MAX_UNASKED_RUNS = 500  # plans larger than this train only with --yes


def write_problem(folder: Path) -> str | None:
    """Why this process cannot create files in `folder` (the OS's words), or None: it is a folder in which
    a probe file could be created (and was removed at once)."""
    probe = folder / f".write-test-{os.getpid()}"
    try:
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as e:
        return e.strerror or str(e)
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
    return None


def check_writable(out: Path, experiment: str | None = None, tensorboard: bool = False, wandb: bool = False) -> None:
    """Fail before any training if results cannot be written where asked: --out, and the experiment's
    folder, its runs/ folder and (with `tensorboard`, `wandb`) its tensorboard/ and wandb/ folders where
    they exist already."""
    from .config import ConfigError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write results there ({e.strerror or e}); "
                          "choose a writable folder") from None
    inside = [out / experiment, out / experiment / "runs"] if experiment else []
    if experiment and tensorboard:
        inside.append(out / experiment / "tensorboard")
    if experiment and wandb:
        inside.append(out / experiment / "wandb")
    for folder in [out] + inside:
        if folder != out and not (folder.exists() or folder.is_symlink()):
            continue
        why = write_problem(folder)
        if why:
            what = "--out " if folder == out else ""
            raise ConfigError(f"{what}{folder}: cannot write results there ({why}); "
                              + ("choose a writable folder" if folder == out else
                                 "make it writable (or a folder), or choose another --out"))


def check_collectable(out: Path, experiment: str) -> None:
    """--collect-only: the experiment must have been run under `out` (its runs/ folder exists)."""
    from .config import ConfigError

    if (Path(out) / experiment / "runs").is_dir():
        return
    there = sorted(p.name for p in Path(out).iterdir() if (p / "runs").is_dir()) if Path(out).is_dir() else []
    raise ConfigError(f"--collect-only: no experiment {experiment!r} under {out} "
                      f"(there: {', '.join(there) or 'none'}); run it first")


def check_cache_writable(cfg: dict) -> None:
    """Fail before any training if the caches cannot be written: the cache folder (CFBENCH_CACHE, else
    XDG_CACHE_HOME/cfbench, else ~/.cache/cfbench; made if missing), and data.cache_dir where set.
    Checked up front with the same probe as --out: a cache is first written minutes into a command."""
    from benchmark.cache_files import cache_dir

    from .config import ConfigError

    from benchmark.process_env import cache_location

    folder = cache_dir()
    source = cache_location()[1]
    folders = [(folder, f"the cache folder {folder} ({source})", "set CFBENCH_CACHE to a writable folder")]
    if cfg["data"].get("cache_dir"):
        folders.append((Path(cfg["data"]["cache_dir"]).expanduser(), f"data.cache_dir {cfg['data']['cache_dir']}",
                        "set data.cache_dir to a writable folder, or leave it unset for CFBENCH_CACHE"))
    for path, what, fix in folders:
        try:
            path.mkdir(parents=True, exist_ok=True)
            why = write_problem(path)
        except OSError as e:
            why = e.strerror or str(e)
        if why:
            raise ConfigError(f"{what}: cannot write the cache there ({why}); {fix}")


def check_size(cfg: dict, yes: bool) -> None:
    """A plan of more than MAX_UNASKED_RUNS runs trains only with --yes; without, its size and the dry
    run's time estimate are the error."""
    from .config import ConfigError, plan
    from .dryrun import estimate_phrase

    n = len(cfg["orderings"]) * len(cfg["strategies"]) * len(cfg["seeds"])
    if n > MAX_UNASKED_RUNS and not yes:
        est = estimate_phrase(cfg, plan(cfg))
        raise ConfigError(f"the plan has {n} runs ({len(cfg['orderings'])} orderings x {len(cfg['strategies'])} "
                          f"strategies x {len(cfg['seeds'])} seeds), "
                          + (f"{est}: more than {MAX_UNASKED_RUNS} runs; --dry-run lists them with the estimate, "
                             "--gpus N gives the wall time on N GPUs" if est else
                             f"more than {MAX_UNASKED_RUNS}, and no time estimate without a `throughput` (training "
                             "images/s of one GPU) in the config; --dry-run lists them")
                          + "; add --yes to train them all")


_FILE_ERRORS = {
    errno.ENOSPC: "the file system is full; free space, or choose another --out (or CFBENCH_CACHE for the cache)",
    errno.EDQUOT: "the disk quota is used up; free space, or choose another --out (or CFBENCH_CACHE)",
    errno.EFBIG: ("the file is larger than this process may write (ulimit -f) or the file system allows; raise "
                  "the limit, or choose another --out (or CFBENCH_CACHE for the cache)"),
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
