#!/usr/bin/env python
"""docs/example/: what a report looks like, before running anything. One script makes all of it from a
real run of the default preset, and prints the README's leaderboard rows from the same records.

    python scripts/make_example.py                      # runs the default preset into a temporary folder (1-2 min)
    python scripts/make_example.py --results results/micro   # or: an experiment folder of the default run

It copies the default run's report.md, report.html, plots/ and runs/ (the records, to compare with a fresh
run) into docs/example/ (the old copy replaced as a whole), and writes docs/example/leaderboard.md: the rows of the README's table (accuracies in
points), with the machine's numeric path, so that every number the README shows comes from the
example it links to. Exit 2 with one line when the folder holds no finished run of the default preset.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = [("ACC", "ACC"), ("BWT", "BWT"), ("FWT", "FWT"), ("dLP_heldout", "dLP held-out"), ("dLP_all", "dLP all"),
           ("dZS_heldout", "dZS held-out")]


def leaderboard_rows(experiment: Path) -> list[str]:
    """The README's table from the experiment's leaderboard.csv: one row per run, points, signed deltas."""
    import pandas as pd

    df = pd.read_csv(experiment / "leaderboard.csv")
    out = ["| strategy | ordering | seed | " + " | ".join(t for _, t in COLUMNS) + " |",
           "|---|---|---|" + "---|" * len(COLUMNS)]
    for _, r in df.iterrows():
        params = json.loads(r["params"]) if isinstance(r["params"], str) and r["params"] else {}
        name = r["strategy"] + (f" (lam {params['lam']:g})" if "lam" in params else "")
        cells = []
        for col, _ in COLUMNS:
            v = r[col]
            cells.append("" if v is None or (isinstance(v, float) and math.isnan(v))
                         else (f"{v * 100:.1f}" if col == "ACC" else f"{v * 100:+.1f}"))
        out.append(f"| {name} | {r['ordering']} | {r['seed']} | " + " | ".join(cells) + " |")
    return out


def numeric_path(experiment: Path) -> str:
    paths = set()
    for p in sorted((experiment / "runs").glob("*/records.json")):
        n = (json.loads(p.read_text()).get("env") or {}).get("numerics") or {}
        paths.add(f"{n.get('capability', '?')} kernels on {n.get('cpu', 'an unnamed CPU')}")
    return "; ".join(sorted(paths)) or "not recorded"


def make(experiment: Path, docs: Path) -> list[str]:
    from evaluation.reporting.collect import collect

    if not list((experiment / "runs").glob("*/done")):
        raise SystemExit(2)
    collect(experiment, plots=True)  # report.md, report.html and plots/ from this checkout's code
    tmp = docs.with_name(docs.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "plots").mkdir(parents=True)
    for name in ("report.md", "report.html"):
        shutil.copyfile(experiment / name, tmp / name)
    for p in sorted((experiment / "plots").glob("*.png")):
        shutil.copyfile(p, tmp / "plots" / p.name)
    for run in sorted(p.parent for p in (experiment / "runs").glob("*/done")):  # the records it was made from
        (tmp / "runs" / run.name).mkdir(parents=True)
        for name in ("config.json", "records.json", "done"):
            shutil.copyfile(run / name, tmp / "runs" / run.name / name)
    rows = leaderboard_rows(experiment)
    (tmp / "leaderboard.md").write_text(
        "# The default run's leaderboard (the README's table)\n\n"
        f"Made by `python scripts/make_example.py` from the run in this folder; numeric path: {numeric_path(experiment)}. "
        "Accuracies in points; on another CPU the numbers differ (README, \"Numbers on another machine\").\n\n"
        + "\n".join(rows) + "\n")
    old = docs.with_name(docs.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if docs.exists():
        docs.rename(old)
    tmp.rename(docs)
    shutil.rmtree(old, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, help="an experiment folder of the default run (default: run it now)")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "example", help="where the example goes")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cfbench-example-") as tmp:
        if args.results is None:
            out = Path(tmp)
            code = subprocess.call([sys.executable, str(ROOT / "run_benchmark.py"), "--out", str(out), "-q"], cwd=ROOT)
            if code:
                print(f"error: the default run failed (exit {code}); nothing written", file=sys.stderr)
                return code
            experiment = out / "micro"
        else:
            experiment = args.results
        if not (experiment / "runs").is_dir() or not list((experiment / "runs").glob("*/done")):
            print(f"error: {experiment} holds no finished run; pass the folder of a default run (results/micro) "
                  "or no --results to run it now", file=sys.stderr)
            return 2
        rows = make(experiment, args.docs)
    print("\n".join(rows))
    print(f"wrote {args.docs} (report.md, report.html, plots/, runs/, leaderboard.md)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
