"""Regenerate the README's three example images from an experiment's plots.

    python scripts/make_readme_figures.py results/micro [--run RUN_ID] [--docs docs]

Copies, from `<results>/plots/` (written by run_benchmark.py or `python -m evaluation.reporting.collect`):

    accuracy_matrix_<ft run id>.png  -> docs/example_accuracy_matrix_ft.png
    dLP_per_dataset.png              -> docs/example_dLP_per_dataset.png
    accuracy_vs_forgetting.png       -> docs/example_accuracy_vs_forgetting.png

The accuracy matrix is that of a finished `ft` run: the lowest seed, then the first ordering in
alphabetical order (`--run RUN_ID` picks another). Nothing is written unless all three exist; a
missing one is one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGETS = {"accuracy_matrix": "example_accuracy_matrix_ft.png", "dLP_per_dataset.png": "example_dLP_per_dataset.png",
           "accuracy_vs_forgetting.png": "example_accuracy_vs_forgetting.png"}


class Missing(Exception):
    pass


def ft_run(results: Path) -> str:
    """The run id of the finished ft run whose accuracy matrix the README shows."""
    from evaluation.reporting.leaderboard import load_runs

    ft = sorted((rec.seed, ">".join(rec.ordering), rid) for rid, rec in load_runs(results)
                if rec.strategy_name == "ft")
    if not ft:
        raise Missing(f"{results} holds no finished ft run, whose accuracy matrix the README shows")
    return ft[0][2]


def sources(results: Path, run: str | None = None) -> dict[Path, str]:
    """plot file -> README image name; Missing (one line) when a plot is not there."""
    results = Path(results)
    plots = results / "plots"
    if not plots.is_dir():
        raise Missing(f"{plots} does not exist; build the plots with python -m evaluation.reporting.collect {results}")
    run = run or ft_run(results)
    # one run's matrix is named by what it shows, the run id last (accuracy_matrix_<strategy>__...__<run id>.png)
    named = sorted(plots.glob(f"accuracy_matrix_*{run}.png"))
    out = {(named[0] if named else plots / f"accuracy_matrix_{run}.png"): TARGETS["accuracy_matrix"],
           plots / "dLP_per_dataset.png": TARGETS["dLP_per_dataset.png"],
           plots / "accuracy_vs_forgetting.png": TARGETS["accuracy_vs_forgetting.png"]}
    missing = [p.name for p in out if not p.is_file()]
    if missing:
        raise Missing(f"{plots} lacks {', '.join(missing)}; rebuild the plots with python -m evaluation.reporting.collect {results}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path, help="an experiment folder (e.g. results/micro)")
    ap.add_argument("--run", metavar="RUN_ID", help="the run whose accuracy matrix to show (default: an ft run)")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs", help="where the README's images live (default: docs/)")
    args = ap.parse_args(argv)
    try:
        todo = sources(args.results, args.run)
    except Missing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from benchmark.files import atomic_write_bytes

    for src, dst in todo.items():
        atomic_write_bytes(args.docs / dst, src.read_bytes())
        print(f"{src} -> {args.docs / dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
