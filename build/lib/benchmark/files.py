"""Files written so that no reader ever sees half of one, and what killed writers leave behind.

Every result and cache file is written through a temporary file in the same folder, flushed, synced
and renamed over its name. The temporary files carry the writer's pid, so that a later start can tell
the ones a killed process stranded (removed) from the ones a live process is writing (left alone).
The lowest layer of the project: it imports nothing of it (docs/design.md, "Layers").
"""
from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path
from typing import Any, Iterator

TMP_SUFFIX = ".tmp"

_umask = os.umask(0)
os.umask(_umask)
FILE_MODE = 0o666 & ~_umask  # what open() would give a new file: result files are not private


def _fault(point: str) -> None:
    """Crash-test hook: CFBENCH_FAULT=<point> kills this process with SIGKILL at that point."""
    if os.environ.get("CFBENCH_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)  # full, over quota, over ulimit -f, read-only


def no_room(e: BaseException) -> bool:
    """A write failed for want of room (every later write would fail too): what catches optional output
    (a plot, a report section) and skips it with a warning lets this one through, so that the command
    stops with one line instead of a warning per file and a claim that it finished."""
    return isinstance(e, OSError) and e.errno in NO_ROOM


def temp_path(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.{os.urandom(3).hex()}{TMP_SUFFIX}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            _fault(f"mid-write:{path.name}")
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp.exists():
            tmp.unlink()
        if isinstance(e, OSError) and e.filename is None:  # a failed write() names no file: name the one meant
            e.filename = str(path)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stranded_temp_files(folder: Path) -> Iterator[Path]:
    """Temporary files under `folder` whose writer is no longer alive."""
    for p in Path(folder).rglob(f".*{TMP_SUFFIX}"):
        parts = p.name.rsplit(".", 3)  # .<name>.<pid>.<hex>.tmp
        if len(parts) == 4 and parts[1].isdigit() and not pid_alive(int(parts[1])):
            yield p
