"""Read the record files of experiments and print the three figures of docs/micro_evidence.md with 95% intervals over seeds.

    python scripts/search_micro.py results/micro-evidence [more experiment folders ...]
        [--base ft] [--protector "ldifs:lam=100" | --all] [--per-seed] [--markdown] [--merge]

Each folder is one experiment (`--out`/`--experiment` of run_benchmark.py). Its runs are grouped by
strategy *and* hyperparameters (the leaderboard's `params`), never pooled across a grid: a folder
with `ldifs:lam=[10,100]` holds the groups `ldifs:lam=10.0` and `ldifs:lam=100.0`. The base (`ft`
by default) is compared with one protector group, paired by seed: `--protector` names it by its
strategy and, where several settings ran, by its hyperparameters (`ldifs:lam=100`); the default
`ldifs` is taken when exactly one ldifs group ran, and when several did every group is reported, as
with `--all` (every group other than the base, each against the base). `--per-seed` also prints each
group's figures seed by seed (points, two decimals; each seed's orderings averaged) so that the means
and intervals can be recomputed by hand. `--markdown` prints one table row per folder and protector,
as in docs/micro_evidence.md. Exit status 2 on bad input (one line).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.reporting.evidence import (evidence, evidence_all, format_evidence, format_per_seed, per_group,  # noqa: E402
                                 select)
from evaluation.storage.records import Records  # noqa: E402

DEFAULT_PROTECTOR = "ldifs"


def load_records(folder: Path) -> list[Records]:
    """Complete runs' records under folder/runs/*/records.json (typed; records that do not fit the schema
    are left out, as the collector leaves them out)."""
    recs = []
    for p in sorted(Path(folder).glob("runs/*/records.json")):
        try:
            rec = Records.from_json(json.loads(p.read_text()))
        except ValueError:
            continue
        if rec.complete:
            recs.append(rec)
    return recs


def chance_levels(records: list[Records]) -> dict[str, float]:
    from benchmark.data import catalog

    names = {d for r in records for d in r.suite}
    return {d: 1.0 / len(catalog()[d]["classnames"]) for d in names}


def markdown_row(name: str, ev: dict, wall: float) -> str:
    def c(k):
        x = ev.get(k)
        return "n/a" if x is None else f"{100 * x['mean']:+.1f} ± {100 * x['ci95']:.1f}"
    h = ev["holds"]
    ok = "".join("Y" if h.get(k) else "n" for k in ("gain", "forgetting", "protection"))
    return (f"| {name} | {len(ev['seeds'])} | {c('gain')} | {c('dLP_heldout')} | {c('dZS_heldout')} | "
            f"{c('protector_gain')} | {c('protection')} | {c('gain_gap')} | {ok} | {wall:.0f} |")


def comparisons(recs: list[Records], chance: dict, base: str, protector: str | None, every: bool) -> tuple[list[dict], str]:
    """The evidence dicts to print, and a note line ('' for none)."""
    groups = per_group(recs, chance)
    if every:
        return evidence_all(recs, chance, base=base), ""
    if protector is None:  # the default: one ldifs group, or every group when a grid ran
        try:
            select(DEFAULT_PROTECTOR, groups)
        except ValueError as e:
            if str(e).startswith("no runs of"):
                return [evidence(recs, chance, base=base, protector=None)], ""
            evs = evidence_all(recs, chance, base=base)
            return evs, (f"note: {DEFAULT_PROTECTOR!r} ran with several settings; each group is compared with "
                         f"{evs[0]['base'] if evs else base!r} (pick one with --protector)")
        protector = DEFAULT_PROTECTOR
    else:
        select(protector, groups)  # a protector given by name must exist
    return [evidence(recs, chance, base=base, protector=protector)], ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--base", default="ft", metavar="SPEC", help="the group the others are compared with (default: ft)")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--protector", metavar="SPEC",
                       help='the group compared with the base, e.g. "ldifs:lam=100" (default: the one ldifs group)')
    which.add_argument("--all", action="store_true", help="compare every group other than the base with the base")
    ap.add_argument("--per-seed", action="store_true", help="also print every group's figures seed by seed")
    ap.add_argument("--markdown", action="store_true", help="one table row per folder (and protector)")
    ap.add_argument("--merge", action="store_true",
                    help="pool the folders' runs as one experiment (e.g. ft and ldifs run as separate experiments)")
    args = ap.parse_args(argv)
    missing = [str(f) for f in args.folders if not f.is_dir()]
    if missing:
        print(f"error: not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    groups = [(f, load_records(f)) for f in args.folders]
    if args.merge:
        groups = [(Path("+".join(f.name for f, _ in groups)), [r for _, rs in groups for r in rs])]
    for folder, recs in groups:
        if not recs:
            print(f"{folder}: no complete runs", file=sys.stderr)
            continue
        chance = chance_levels(recs)
        try:
            evs, note = comparisons(recs, chance, args.base, args.protector, args.all)
        except ValueError as e:
            print(f"error: {folder}: {e}", file=sys.stderr)
            return 2
        wall = sum(r.wall_s or 0.0 for r in recs)
        if not args.markdown:
            print(f"== {folder} ({len(recs)} runs, {wall:.0f} s of run time)")
            if note:
                print(note)
        for ev in evs:
            if args.markdown:
                name = folder.name + (f" ({ev['protector']})" if len(evs) > 1 and "protector" in ev else "")
                print(markdown_row(name, ev, wall))
            else:
                if "protector" in ev:
                    print(f"-- {ev['protector']} against {ev['base']}, paired by seed")
                print(format_evidence(ev))
        if args.per_seed:
            print("per seed (points; final minus pre-trained; n = orderings averaged):")
            print(format_per_seed(recs, chance))
    return 0


if __name__ == "__main__":
    sys.exit(main())
