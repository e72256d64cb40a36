"""Read the record files of experiments and print issue 9's three figures with 95% intervals over seeds.

    python scripts/search_micro.py results/micro-evidence [more experiment folders ...] [--markdown]

Each folder is one experiment (`--out`/`--experiment` of run_benchmark.py); its runs are grouped by
nothing but strategy name, so give one setting per folder. `--markdown` prints one table row per
folder, as in docs/micro_evidence.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.datasets import catalog  # noqa: E402
from evaluation.evidence import evidence, format_evidence  # noqa: E402


def load_records(folder: Path) -> list[dict]:
    """Complete runs' records under folder/runs/*/records.json."""
    recs = []
    for p in sorted(Path(folder).glob("runs/*/records.json")):
        rec = json.loads(p.read_text())
        if rec.get("complete"):
            recs.append(rec)
    return recs


def chance_levels(records: list[dict]) -> dict[str, float]:
    names = {d for r in records for d in r["suite"]}
    return {d: 1.0 / len(catalog()[d]["classnames"]) for d in names}


def markdown_row(name: str, ev: dict, wall: float) -> str:
    def c(k):
        x = ev.get(k)
        return "n/a" if x is None else f"{100 * x['mean']:+.1f} ± {100 * x['ci95']:.1f}"
    h = ev["holds"]
    ok = "".join("Y" if h.get(k) else "n" for k in ("gain", "forgetting", "protection"))
    return (f"| {name} | {len(ev['seeds'])} | {c('gain')} | {c('dLP_heldout')} | {c('dZS_heldout')} | "
            f"{c('ldifs_gain')} | {c('protection')} | {c('gain_gap')} | {ok} | {wall:.0f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--markdown", action="store_true", help="one table row per folder")
    ap.add_argument("--merge", action="store_true",
                    help="pool the folders' runs as one setting (e.g. ft and ldifs run as separate experiments)")
    args = ap.parse_args(argv)
    groups = [(f, load_records(f)) for f in args.folders]
    if args.merge:
        groups = [(Path("+".join(f.name for f, _ in groups)), [r for _, rs in groups for r in rs])]
    for folder, recs in groups:
        if not recs:
            print(f"{folder}: no complete runs", file=sys.stderr)
            continue
        ev = evidence(recs, chance=chance_levels(recs))
        wall = sum(r.get("wall_s", 0.0) for r in recs)
        if args.markdown:
            print(markdown_row(folder.name, ev, wall))
        else:
            print(f"== {folder} ({len(recs)} runs, {wall:.0f} s of run time)")
            print(format_evidence(ev))
    return 0


if __name__ == "__main__":
    sys.exit(main())
