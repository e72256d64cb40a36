"""Before any training: which datasets (and weights) are missing or unreadable, all in one report."""
from __future__ import annotations

from pathlib import Path

from .registry import entry, how_to_get
from .sources import read_split


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


def check_available(names, root, download: bool = False, variants: dict | None = None) -> list[str]:
    """One line per dataset of `names` that cannot be read under `root`: which dataset, where it was
    looked for, the reason, how to get it and the folder layout expected. [] when all are readable.

    With `download`, torchvision first fetches what it can (datasets whose entry allows it)."""
    root = Path(root).expanduser()
    lines = []
    for name in dict.fromkeys(names):
        variant = (variants or {}).get(name)  # data.variants: another layout may be expected
        e = entry(name, variant)
        if e["kind"] == "micro":  # embedded in the repository: only a damaged file can fail
            try:
                for s in ("train", "test"):
                    read_split(name, s, root)
            except Exception as err:  # noqa: BLE001 - a truncated zip, a missing array: all the same to a user
                rel = f"benchmark/assets/micro/{e['file']}"
                lines.append(f"dataset {name}: the packaged file {rel} is damaged ({_first_line(err)}); restore it "
                             f"with `git checkout -- {rel}` or rebuild it with `python scripts/build_micro_suite.py`")
            continue
        splits = ("train", "val", "test") if e["val"] == "fixed" else ("train", "test")
        try:
            if download and e.get("build") == "eurosat_splits" and not all((root / m).exists() for m in e["markers"]):
                from .eurosat_splits import build  # fetch the archive, then sort it into the split folders

                build(root, download=True)
            for s in splits:
                src = read_split(name, s, root, download=download and bool(e.get("download")), variant=variant)
                if len(src) == 0:
                    raise RuntimeError(f"its {s} split is empty")
        except Exception as err:  # noqa: BLE001 - any failure to read is reported, with its reason
            get = how_to_get(e, root)
            how = get if (e.get("download") and not download) or not e.get("download") else \
                f"the download failed; {get}"
            lines.append(f"dataset {name}: not readable under {root} ({_first_line(err)}); get it: {how}; "
                         f"expected layout under {root}: {e['layout']}")
    return lines
