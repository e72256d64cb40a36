"""What the command does to its own process before the heavy imports, so that it writes nothing outside
--out and the cache. Nothing here runs on import: the command (experiment/cli.py), a Ray worker and the
tests call these functions; a program that imports the packages as a library keeps its environment.

- Avalanche's `dataset_utils` creates `~/.avalanche/config.json` when first imported (a PermissionError
  for a user whose home is not writable, and a file outside --out and the cache for everyone else). We
  read no Avalanche dataset, so `import_avalanche_quietly` imports that one module while HOME points at
  a packaged folder that already holds the file (benchmark/assets/avalanche_home/), then restores HOME.
- The packaged text tower and its tokenizer (and an open_clip model whose text tower is a Hugging Face
  one) load from disk, never from a hub: `hub_offline` turns Hugging Face's offline mode on while they
  are built (the environment variables and huggingface_hub's own flag, which it reads at import), then
  puts both back.
- Matplotlib (imported by Avalanche and the plots) keeps its font cache under ~/.cache and ~/.config;
  `matplotlib_in_cache` points MPLCONFIGDIR at the cache's matplotlib/ folder, unless the user chose one.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path

AVALANCHE_HOME = Path(__file__).resolve().parent / "assets" / "avalanche_home"
_MODULE = "avalanche.benchmarks.datasets.dataset_utils"


def cache_location() -> tuple[Path, str]:
    """The cache folder and where its location came from: $CFBENCH_CACHE, else $XDG_CACHE_HOME/cfbench,
    else ~/.cache/cfbench. An empty variable counts as unset (the XDG rule), and so does a relative
    XDG_CACHE_HOME (the XDG specification ignores one), so that no setting puts the cache in the current
    folder by accident; an empty or relative HOME falls back to the user's home in the password database."""
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


def cache_root() -> Path:
    """benchmark.cache_files.cache_dir, without its torch import."""
    return cache_location()[0]


def _writable(folder: Path) -> bool:
    """Whether this user could create `folder` or write in it (its nearest existing ancestor decides)."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def matplotlib_in_cache() -> None:
    """MPLCONFIGDIR = the cache's matplotlib/ folder, unless set; where the cache cannot be written (the
    pre-flight refuses such a cache in one line of its own), a private temporary folder removed at exit,
    so that matplotlib neither warns about an unwritable folder nor leaves a folder of its own."""
    if "MPLCONFIGDIR" in os.environ:
        return
    mine = cache_root() / "matplotlib"
    if _writable(mine):
        os.environ["MPLCONFIGDIR"] = str(mine)
        return
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="cfbench-matplotlib-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["MPLCONFIGDIR"] = folder


def import_avalanche_quietly() -> None:
    """Import Avalanche's dataset_utils (once per process) with HOME at the packaged folder, then put
    HOME back as it was."""
    if _MODULE in sys.modules:
        return
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(AVALANCHE_HOME)
    try:
        importlib.import_module(_MODULE)
    finally:
        if old is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = old


def prepare_command() -> None:
    """Both, in the order the command needs them (matplotlib's folder before anything imports it)."""
    matplotlib_in_cache()
    import_avalanche_quietly()


_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@contextlib.contextmanager
def hub_offline():
    """Hugging Face's offline mode for the duration (unless the user set the variables: theirs stand),
    then the environment and huggingface_hub's flag as they were."""
    old_env = {k: os.environ.get(k) for k in _OFFLINE_VARIABLES}
    for k in _OFFLINE_VARIABLES:
        os.environ.setdefault(k, "1")
    constants = sys.modules.get("huggingface_hub.constants")  # read once at its import: set it too
    old_flag = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None and old_env["HF_HUB_OFFLINE"] is None and old_env["TRANSFORMERS_OFFLINE"] is None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if constants is not None:
            constants.HF_HUB_OFFLINE = old_flag
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
