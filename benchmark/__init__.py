"""The benchmark's lowest folder: data, models, training protocol, caches, files.

On import it makes Avalanche leave the user's home alone: Avalanche's dataset_utils creates
`~/.avalanche/config.json` when first imported (a PermissionError for a user whose home is not
writable, and a file outside --out and the cache for everyone else). We read no Avalanche
dataset, so while that one module is imported HOME points at a packaged folder that already
holds the file (benchmark/assets/avalanche_home/): nothing is written anywhere. Matplotlib's
font cache goes into the benchmark's cache (MPLCONFIGDIR), unless the user set it.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path

AVALANCHE_HOME = Path(__file__).resolve().parent / "assets" / "avalanche_home"
_MODULE = "avalanche.benchmarks.datasets.dataset_utils"


class _HomeSwappingLoader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        old = os.environ.get("HOME")
        os.environ["HOME"] = str(AVALANCHE_HOME)
        try:
            self.inner.exec_module(module)
        finally:
            if old is None:
                os.environ.pop("HOME", None)
            else:
                os.environ["HOME"] = old


class _AvalancheHome(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _HomeSwappingLoader(spec.loader)
        return spec


def cache_location() -> tuple[Path, str]:
    """The cache folder and where its location came from: $CFBENCH_CACHE, else $XDG_CACHE_HOME/cfbench,
    else ~/.cache/cfbench. An empty variable counts as unset (the XDG rule), and so does a relative
    XDG_CACHE_HOME (the XDG specification ignores one), so that no setting puts the cache in the current
    folder by accident; an empty or relative HOME falls back to the user's home in the password database.
    Torch-free: benchmark.cache_files.cache_dir and the guards call it."""
    mine = os.environ.get("CFBENCH_CACHE", "")
    if mine:
        return Path(mine), "CFBENCH_CACHE"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "cfbench", "from XDG_CACHE_HOME"
    return _home() / ".cache" / "cfbench", "under the home folder; CFBENCH_CACHE sets another"


def _home() -> Path:
    home = os.environ.get("HOME", "")
    if home and os.path.isabs(home):
        return Path(home)
    try:
        import pwd

        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError, OSError):
        return Path.home()


def _cache_root() -> Path:  # benchmark.cache_files.cache_dir, without its torch import
    return cache_location()[0]


def _writable(folder: Path) -> bool:
    """Whether this user could create `folder` or write in it (its nearest existing ancestor decides)."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _matplotlib_dir() -> str:
    """Our cache's matplotlib/ folder; where the cache cannot be written (the pre-flight refuses such a
    cache in one line of its own), a private temporary folder removed at exit, so that matplotlib
    neither prints its warnings about an unwritable folder nor leaves its own temporary folder."""
    mine = _cache_root() / "matplotlib"
    if _writable(mine):
        return str(mine)
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="cfbench-matplotlib-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


# Matplotlib (imported by Avalanche and the plots) keeps its font cache under ~/.cache and ~/.config;
# unless the user chose a folder for it, it goes into ours.
if "MPLCONFIGDIR" not in os.environ:
    os.environ["MPLCONFIGDIR"] = _matplotlib_dir()

if _MODULE not in sys.modules and not any(isinstance(f, _AvalancheHome) for f in sys.meta_path):
    sys.meta_path.insert(0, _AvalancheHome())
