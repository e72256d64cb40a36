"""Run folders: config, records and a done marker, written atomically (DomainBed-style)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

RECORDS, CONFIG, DONE = "records.json", "config.json", "done"


def run_id(hashed_config: dict[str, Any]) -> str:
    """A stable id: the hash of the run's full (result-determining) config, keys sorted."""
    blob = json.dumps(hashed_config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def is_done(run_dir: Path) -> bool:
    return (run_dir / DONE).exists() and (run_dir / RECORDS).exists()


def mark_done(run_dir: Path) -> None:
    atomic_write_text(run_dir / DONE, "")


def load_records(run_dir: Path) -> dict[str, Any]:
    with open(run_dir / RECORDS) as f:
        return json.load(f)


def finished_runs(experiment_dir: Path) -> list[Path]:
    runs = Path(experiment_dir) / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir() and is_done(p)) if runs.is_dir() else []
