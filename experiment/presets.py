"""Where presets live: `configs/<name>.yaml`, or a path to any YAML file.

Kept apart from experiment.config (which imports the strategies, hence Avalanche and torch) so that
the command can read a preset before those imports (experiment/settings.py).
"""
from __future__ import annotations

from pathlib import Path


def _config_dir() -> Path:
    """configs/ of a checkout, else the copy an installed package carries (experiment/configs/)."""
    here = Path(__file__).resolve()
    checkout = here.parents[1] / "configs"
    return checkout if checkout.is_dir() else here.parent / "configs"


CONFIG_DIR = _config_dir()


def presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def preset_path(name_or_path: str) -> Path:
    """The file a --config value names: a preset name without suffix, or a path (which may not exist)."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    return path
