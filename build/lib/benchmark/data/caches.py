"""On-disk caches, each keyed by everything that determines its content and written atomically
(temporary file + rename), so concurrent processes and interrupted writes never leave a bad file.

- Decoded splits (`data.cache`): a split decoded once into a memory-mapped uint8 array at the
  model's resolution, with a SHA-256 checksum that is verified (once per process) and rebuilt on mismatch.
- Features: the pre-trained encoder's image embeddings of a split, reused by every run, strategy and
  process of an experiment (row 0 of LP/ZS and the LP-init heads). Hits and misses are counted.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from .sources import ArraySource, Source


def cache_root() -> Path:
    """`$CFBENCH_CACHE`, else `$XDG_CACHE_HOME/cfbench`, else `~/.cache/cfbench` (benchmark.cache_files's)."""
    from ..cache_files import cache_dir

    return cache_dir()


def key_of(parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _tmp(path: Path) -> Path:
    from ..files import temp_path  # .<name>.<pid>.<hex>.tmp: the stale-file cleaner knows the pattern

    return temp_path(path)


def _meta_check(digest: str, key: str, targets: list) -> str:
    """The sidecar's own checksum: the array's checksum, the cache key and the labels together, so that
    edited labels, or a pair of files moved to another key, are a miss."""
    return hashlib.sha256(json.dumps([digest, key, targets], separators=(",", ":")).encode()).hexdigest()


def _sha256(path: Path, chunk: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


class _Geometry(torch.utils.data.Dataset):
    """Decodes a source's images and applies the cache geometry (for a DataLoader with workers)."""

    def __init__(self, src: Source, geometry):
        self.src, self.geometry = src, geometry

    def __len__(self):
        return len(self.src)

    def __getitem__(self, i):
        img = self.src.image(i)
        if isinstance(img, np.ndarray):
            from PIL import Image

            img = Image.fromarray(img)
        return torch.from_numpy(np.asarray(self.geometry(img.convert("RGB")), dtype=np.uint8).copy())


def _reserve(path: Path) -> None:
    """Allocate the disk blocks of a new memory-mapped file now: a full disk is then an OSError here,
    not a SIGBUS when a page of the map is first written (the file is sparse until then)."""
    import errno

    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system that cannot reserve: as before
            raise
    finally:
        os.close(fd)


_verified: set[tuple] = set()  # (path, size, mtime) whose checksum this process has checked
stats = {"split_builds": 0, "split_hits": 0, "feature_hits": 0, "feature_misses": 0}


def cached_split(src: Source, key_parts: dict, size: int, folder: Path, num_workers: int = 0) -> ArraySource:
    """`src` decoded at `size` x `size` (bicubic resize + centre crop) into a memory-mapped uint8 array."""
    from .transforms import cache_geometry

    folder = Path(folder)
    key = key_of({**key_parts, "size": size, "geometry": "resize-bicubic-centercrop", "n": len(src)})
    path, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
    if path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            st = path.stat()
            tag = (str(path), st.st_size, st.st_mtime_ns)
            if meta.get("check") != _meta_check(meta["sha256"], key, meta["targets"]):
                raise ValueError("labels or key do not match the sidecar's checksum")
            if tag in _verified or _sha256(path) == meta["sha256"]:
                _verified.add(tag)
                stats["split_hits"] += 1
                return ArraySource(np.load(path, mmap_mode="r"), np.asarray(meta["targets"]), src.classes)
        except (OSError, ValueError, KeyError):
            pass  # unreadable or stale: rebuilt below
    folder.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(src), size, size, 3))
        _reserve(tmp)
        loader = torch.utils.data.DataLoader(_Geometry(src, cache_geometry(size)), batch_size=64,
                                             num_workers=num_workers)
        at = 0
        for batch in loader:
            arr[at:at + len(batch)] = batch.numpy()
            at += len(batch)
        arr.flush()
        del arr
        digest = _sha256(tmp)
        os.replace(tmp, path)
    except BaseException as e:  # a full disk, an interrupt: no half-written array is left behind
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)
        raise
    from ..files import atomic_write_text

    targets = src.targets.tolist()
    atomic_write_text(meta_path, json.dumps({"sha256": digest, "key": key_parts, "size": size, "targets": targets,
                                             "check": _meta_check(digest, key, targets)}))
    st = path.stat()
    _verified.add((str(path), st.st_size, st.st_mtime_ns))
    stats["split_builds"] += 1
    return ArraySource(np.load(path, mmap_mode="r"), src.targets, src.classes)


class FeatureCache:
    """Image embeddings of the pre-trained encoder, one file per (model weights, dataset, split,
    transform, subset, device type, numeric path): the caller's key says which."""

    def __init__(self, folder: Path | str | None):
        self.folder = Path(folder) if folder is not None else None

    def get(self, key_parts: dict, compute) -> torch.Tensor:
        if self.folder is None:
            return compute()
        from ..cache_files import load, save  # checksummed: a damaged file is a miss, recomputed and replaced

        path = self.folder / f"{key_of(key_parts)}.pt"
        hit = load(path)
        if hit is not None and "features" in hit:
            stats["feature_hits"] += 1
            return hit["features"]
        t = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        save(path, {"features": t.contiguous()})
        stats["feature_misses"] += 1
        return t
