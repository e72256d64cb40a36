"""Where presets live: `configs/<name>.yaml`, or a path to any YAML file.

Kept apart from experiment.config (which imports the strategies, hence Avalanche and torch) so that
run_benchmark.py can find a preset before those imports, to start its --jobs helpers at once.
"""
from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def preset_path(name_or_path: str) -> Path:
    """The file a --config value names: a preset name without suffix, or a path (which may not exist)."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    return path
