"""On-disk caches of tensors, checked on every read: a truncated, garbled or altered file is a miss
(and is rebuilt by the caller), never an error and never silently wrong data."""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from .files import atomic_write_bytes


def cache_dir() -> Path:
    """$CFBENCH_CACHE, else $XDG_CACHE_HOME/cfbench, else ~/.cache/cfbench."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cfbench"
    return Path(os.environ.get("CFBENCH_CACHE", default))


def digest(tensors: dict[str, torch.Tensor], key: str = "") -> str:
    """Checksum of the tensors and of the cache key they were saved under (the file's name): a file
    moved or copied to another key fails it."""
    h = hashlib.sha256()
    h.update(f"key:{key}\n".encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write tensors with their checksum, atomically."""
    buf = io.BytesIO()
    torch.save({"tensors": {k: v.detach().cpu() for k, v in tensors.items()}, "sha256": digest(tensors, Path(path).name)}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load(path: Path) -> dict[str, torch.Tensor] | None:
    """The tensors saved at `path`, or None when the file is missing or fails its checksum (then it is
    removed, so that the caller's rebuild replaces it)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        tensors = blob["tensors"] if isinstance(blob, dict) else None
        if isinstance(tensors, dict) and all(isinstance(v, torch.Tensor) for v in tensors.values()) \
                and blob["sha256"] == digest(tensors, path.name):
            return tensors
    except Exception:  # noqa: BLE001 - any unreadable file is a miss: pickle, zip and key errors alike
        pass
    path.unlink(missing_ok=True)
    return None
