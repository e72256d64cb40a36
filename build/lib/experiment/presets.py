"""Where presets live: `configs/<name>.yaml`, or a path to any YAML file.

Kept apart from experiment.config (which imports the strategies, hence Avalanche and torch) so that
run_benchmark.py can find a preset before those imports, to start its --jobs helpers at once.
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


_UNSET = object()


def early_setting(dotted: str, flag, sets: list[str], config: str, default=None):
    """A setting read before the configuration is validated (and before torch is imported), so that
    --jobs helpers, a Ray connection or the numeric path can start at once: in the order in which
    experiment.arguments.resolve_config applies them, the last `--set` that reaches `dotted`
    (`--set executor.kind=ray` or `--set "executor={kind: ray}"`), else the dedicated flag, else the
    config file's value, else `default`. Validation checks the value; a value that cannot be read here
    gives `default`, and validation then says what is wrong in one line."""
    from benchmark import strict_yaml

    keys = dotted.split(".")
    for s in reversed(sets):
        name, eq, text = s.partition("=")
        parts = name.strip().split(".")
        if not eq or parts != keys[:len(parts)]:
            continue
        try:
            value = _dig(strict_yaml.loads(text), keys[len(parts):])
        except Exception:  # noqa: BLE001 - any unreadable value: validation reports it
            return default
        if value is not _UNSET:
            return value
    if flag is not None:
        return flag
    try:  # the bounded reader: a FIFO, /dev/zero or an alias bomb answers at once
        value = _dig(strict_yaml.load_file(preset_path(config)), keys)
    except Exception:  # noqa: BLE001 - as above
        return default
    return default if value is _UNSET or value is None else value


def _dig(node, keys: list[str]):
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return _UNSET
        node = node[k]
    return node
