"""Does this machine reproduce the figures shipped with the repository?

    python scripts/check_reproduction.py                         # rerun the default preset, then compare
    python scripts/check_reproduction.py --results results/micro # compare an existing experiment folder
    python scripts/check_reproduction.py --results DIR --write-expected [--tolerance ACC=0.01 ...]

Without --results it runs `run_benchmark.py --config <preset>` (the expected file's preset; `micro`,
the default preset, for docs/expected/micro.json) into --out (default: a temporary folder, removed
afterwards) and reads what that wrote. The figures are recomputed from each run's records.json (never
from the leaderboard's rounded CSV), for every run of the expected file, matched by strategy with
its hyperparameters, ordering and seed: ACC, BWT, FWT, dLP_heldout, dZS_heldout and dLP per dataset.

Two cases, said in one line before the verdicts:

- "same machine numerics: exact comparison": the records' numerics fingerprint (env.numerics, see
  benchmark/numerics.py) is the expected file's, so the same config must give the same records bit
  for bit. A figure is "identical" or "differs on the same numeric path: a bug or a changed
  environment".
- "other numerics (this: X, expected: Y): tolerance comparison": another CPU's kernels (or torch,
  BLAS, oneDNN) round differently. A figure is "within tolerance" or "outside tolerance" against the
  expected file's `tolerances` (absolute, in fractions; `dLP_*` covers every dataset's dLP unless a
  `dLP_<dataset>` entry is given). A figure without a tolerance in the file cannot be judged across
  machines and counts as not agreeing.

A run whose config differs (another run id for the same strategy, ordering and seed) or that is
missing counts as not agreeing; runs that the expected file does not list are named and ignored.

Exit status: 0 when every figure agrees, 1 otherwise, 2 on bad input (one line on stderr).

Longer than 300 lines because it is one command with its own reading of records, two comparison
modes and the writer of the expected file, each used only here; split, the halves would import each
other.

`--write-expected` writes the expected file from a results folder (or from the rerun): per run its
strategy, params, ordering, seed, run id and figures, and the numerics description (fingerprint,
cpu, ...) of the machine that made them. Tolerances already in the file are kept, `--tolerance
KEY=VALUE` sets one (KEY: a figure's name or `dLP_*`); the others stay null until measured.
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FORMAT = 1
HEADLINE = ("ACC", "BWT", "FWT", "dLP_heldout", "dZS_heldout")
PER_DATASET = "dLP_*"  # the tolerance key that covers every dLP_<dataset>
EXACT, SAME_PATH_DIFF = "identical", "differs on the same numeric path: a bug or a changed environment"
WITHIN, OUTSIDE, NO_TOL = "within tolerance", "outside tolerance", "no tolerance in the expected file"


class BadInput(Exception):
    """Input this script cannot work with: one line, exit status 2."""


# ---------------------------------------------------------------- reading results

def _number(x) -> float | None:
    """A figure as JSON can hold it: None for undefined (NaN), else the float itself (exact)."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def run_figures(rec, rid: str) -> dict:
    """One run's identity and figures, computed from its records as the leaderboard computes them."""
    from evaluation.reporting.leaderboard import run_row

    row = run_row(rec, rid)
    figures = {k: _number(row.get(k)) for k in HEADLINE}
    figures.update({f"dLP_{d}": _number(row[f"dLP_{d}"]) for d in rec.suite})
    numerics = rec.env.get("numerics") if isinstance(rec.env, dict) else None
    return {"strategy": row["strategy"], "params": row["params"] or "", "ordering": row["ordering"],
            "seed": int(row["seed"]), "run_id": rid, "figures": figures,
            "numerics": numerics if isinstance(numerics, dict) else None}


def read_results(folder: Path) -> list[dict]:
    """Every finished, valid run of an experiment folder (as the collector reads them)."""
    from evaluation.reporting.leaderboard import load_runs

    folder = Path(folder)
    if not (folder / "runs").is_dir():
        raise BadInput(f"{folder} is not an experiment folder (no runs/ in it)")
    runs = [run_figures(rec, rid) for rid, rec in load_runs(folder)]
    if not runs:
        raise BadInput(f"{folder} holds no finished run")
    return runs


def key(run: dict) -> tuple[str, str, str, int]:
    return run["strategy"], run["params"], run["ordering"], run["seed"]


def name(run: dict) -> str:
    params = json.loads(run["params"]) if run["params"] else {}
    spec = run["strategy"] + (":" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) if params else "")
    return f"{spec} {run['ordering']} seed {run['seed']}"


def fingerprint(numerics: dict | None) -> str | None:
    return numerics.get("fingerprint") if isinstance(numerics, dict) else None


def describe_numerics(numerics: dict | None) -> str:
    if not isinstance(numerics, dict):
        return "unknown numerics (records made before env.numerics)"
    return f"{numerics.get('fingerprint')} ({numerics.get('cpu') or 'unknown cpu'}, kernels {numerics.get('capability')})"


# ---------------------------------------------------------------- the expected file

def load_expected(path: Path) -> dict:
    try:
        exp = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadInput(f"no expected figures at {path} (write them with --results DIR --write-expected)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"{path} is not valid JSON: {e}") from None
    if not isinstance(exp, dict) or exp.get("format") != FORMAT or not isinstance(exp.get("runs"), list) \
            or not exp["runs"] or not isinstance(exp.get("tolerances"), dict):
        raise BadInput(f"{path} is not an expected-figures file of format {FORMAT} "
                       "(format, numerics, tolerances and a non-empty runs list)")
    for r in exp["runs"]:
        if not isinstance(r, dict) or not all(k in r for k in ("strategy", "params", "ordering", "seed", "figures")) \
                or not isinstance(r["figures"], dict):
            raise BadInput(f"{path}: every run needs strategy, params, ordering, seed and figures")
    for k, v in exp["tolerances"].items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0):
            raise BadInput(f"{path}: tolerance {k} must be a number >= 0 or null, got {v!r}")
    return exp


def tolerance(tolerances: dict, figure: str) -> float | None:
    if figure in tolerances:
        return tolerances[figure]
    if figure.startswith("dLP_") and figure != "dLP_heldout":
        return tolerances.get(PER_DATASET)
    return None


def expected_from(runs: list[dict], preset: str, tolerances: dict) -> dict:
    prints = {fingerprint(r["numerics"]) for r in runs}
    if None in prints:
        raise BadInput("the records carry no env.numerics (made before benchmark/numerics.py): rerun them first")
    if len(prints) > 1:
        raise BadInput(f"the runs come from {len(prints)} numeric paths ({', '.join(sorted(prints))}); "
                       "expected figures must come from one")
    figures_keys = sorted({k for r in runs for k in r["figures"]} - set(HEADLINE))
    tol = {k: None for k in (*HEADLINE, PER_DATASET)}
    tol.update(tolerances)
    return {
        "format": FORMAT,
        "preset": preset,
        "made_by": "python scripts/check_reproduction.py --write-expected",
        "about": "Figures of the preset's runs, recomputed from records.json, and the numerics of the machine "
                 "that made them. tolerances: absolute (fractions), for comparisons on other numerics; "
                 f"{PER_DATASET} covers {', '.join(figures_keys)}; null = not measured yet.",
        "numerics": runs[0]["numerics"],
        "tolerances": tol,
        "runs": [{k: r[k] for k in ("strategy", "params", "ordering", "seed", "run_id", "figures")}
                 for r in sorted(runs, key=key)],
    }


# ---------------------------------------------------------------- comparing

def verdict(value: float | None, want: float | None, exact: bool, tol: float | None) -> str:
    if exact:
        same = value == want  # None == None: both undefined; floats: equal bit for bit (no NaN: None)
        return EXACT if same else SAME_PATH_DIFF
    if value is None or want is None:
        return WITHIN if value is None and want is None else OUTSIDE
    if tol is None:
        return NO_TOL
    return WITHIN if abs(value - want) <= tol else OUTSIDE


def compare(runs: list[dict], expected: dict, out=None) -> bool:
    """Print the case, then each expected run's figures with their verdicts; True when all agree."""
    out = out or sys.stdout
    exp_fp = fingerprint(expected.get("numerics"))
    prints = {fingerprint(r["numerics"]) for r in runs}

    def case_line(fp, numerics):
        if fp is not None and fp == exp_fp:
            return "same machine numerics: exact comparison"
        return (f"other numerics (this: {describe_numerics(numerics)}, expected: "
                f"{describe_numerics(expected.get('numerics'))}): tolerance comparison, which catches gross "
                "breakage only (one run differs between machines by up to ~20 ACC and ~40 BWT points; "
                "docs/numerics.md); for a bug check across machines run the tests' portable sample")

    if len(prints) == 1:
        print(case_line(next(iter(prints)), runs[0]["numerics"]), file=out)
    else:
        print(f"the results come from {len(prints)} numeric paths: the case is said for each run", file=out)
    by_key = {key(r): r for r in runs}
    ok, counts = True, {}
    for want in expected["runs"]:
        k = (want["strategy"], want["params"] or "", want["ordering"], int(want["seed"]))
        label = name({"strategy": k[0], "params": k[1], "ordering": k[2], "seed": k[3]})
        got = by_key.pop(k, None)
        if got is None:
            print(f"{label}: missing from the results", file=out)
            ok = False
            counts["missing run"] = counts.get("missing run", 0) + 1
            continue
        if want.get("run_id") and got["run_id"] != want["run_id"]:
            print(f"{label}: another config (run id {got['run_id']}, expected {want['run_id']}): the preset or the "
                  "code's defaults changed; regenerate the expected figures", file=out)
            ok = False
            counts["other config"] = counts.get("other config", 0) + 1
            continue
        fp = fingerprint(got["numerics"])
        exact = fp is not None and fp == exp_fp
        print(f"{label}" + ("" if len(prints) == 1 else f": {case_line(fp, got['numerics'])}"), file=out)
        width = max(16, *map(len, want["figures"]))
        for fig, w in want["figures"].items():
            v = got["figures"].get(fig)
            tol = tolerance(expected["tolerances"], fig)
            verd = verdict(v, w, exact, tol)
            ok &= verd in (EXACT, WITHIN)
            counts[verd] = counts.get(verd, 0) + 1
            diff = "" if v is None or w is None else f"{v - w:+.3g}"
            tol_text = "" if exact else f"  tol {'-' if tol is None else f'{tol:g}'}"
            print(f"  {fig:<{width}} {_fmt(v):>10}  expected {_fmt(w):>10}  diff {diff or '-':>9}{tol_text}  {verd}",
                  file=out)
    for extra in by_key.values():
        print(f"{name(extra)}: not in the expected figures (ignored)", file=out)
    total = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    print(f"{'agrees' if ok else 'DOES NOT AGREE'}: {total}", file=out)
    return ok


def _fmt(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.6f}"


# ---------------------------------------------------------------- rerunning

def rerun(preset: str, out: Path) -> Path:
    """run_benchmark.py --config preset into `out`; the experiment folder it wrote."""
    cmd = [sys.executable, str(ROOT / "run_benchmark.py"), "--config", preset, "--out", str(out), "-q"]
    print(f"running: {' '.join(cmd)}", file=sys.stderr)
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"run_benchmark.py exited with status {proc.returncode}")
    found = sorted(p.parent for p in Path(out).glob("*/runs"))
    if len(found) != 1:
        raise RuntimeError(f"expected one experiment folder under {out}, found {len(found)}")
    return found[0]


def _parse_tolerances(items: list[str]) -> dict:
    out = {}
    for item in items:
        k, eq, v = item.partition("=")
        try:
            value = float(v)
        except ValueError:
            value = math.nan
        if not eq or not k or not value >= 0 or math.isinf(value):
            raise BadInput(f"--tolerance {item!r}: expected FIGURE=NUMBER (>= 0), e.g. ACC=0.01 or {PER_DATASET}=0.02")
        out[k] = value
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit status 2, like run_benchmark.py
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(prog="check_reproduction.py", description=__doc__,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, metavar="DIR", help="an experiment folder to check (default: rerun the preset)")
    ap.add_argument("--expected", type=Path, metavar="FILE",
                    help="expected figures (default: docs/expected/<preset>.json)")
    ap.add_argument("--preset", default=None,
                    help="the preset to rerun (default: the expected file's, else micro)")
    ap.add_argument("--out", type=Path, metavar="DIR", help="where a rerun writes (default: a temporary folder, removed)")
    ap.add_argument("--write-expected", action="store_true", help="write the expected file from the results instead")
    ap.add_argument("--tolerance", action="append", default=[], metavar="FIGURE=NUMBER",
                    help=f"with --write-expected: an absolute tolerance, e.g. ACC=0.01 or {PER_DATASET}=0.02")
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    tolerances = _parse_tolerances(args.tolerance)
    if tolerances and not args.write_expected:
        raise BadInput("--tolerance is for --write-expected (tolerances are fields of the expected file)")
    preset = args.preset or "micro"
    expected = None
    if not args.write_expected:
        path = args.expected or ROOT / "docs" / "expected" / f"{preset}.json"
        expected = load_expected(path)
        preset = args.preset or expected.get("preset") or "micro"
    if args.results is not None:
        if args.out is not None:
            raise BadInput("--out is where a rerun writes; with --results nothing is rerun")
        runs = read_results(args.results)
        return _finish(args, runs, expected, preset, tolerances)
    tmp = None
    out = args.out
    if out is None:
        tmp = Path(tempfile.mkdtemp(prefix="check_reproduction."))
        out = tmp
    try:
        try:
            folder = rerun(preset, out)
        except RuntimeError as e:
            print(f"error: the rerun failed: {e}", file=sys.stderr)
            return 1
        runs = read_results(folder)
        return _finish(args, runs, expected, preset, tolerances)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _finish(args, runs: list[dict], expected: dict | None, preset: str, tolerances: dict) -> int:
    if args.write_expected:
        path = args.expected or ROOT / "docs" / "expected" / f"{preset}.json"
        kept = {}
        if Path(path).exists():  # measured tolerances survive a regeneration
            try:
                kept = {k: v for k, v in load_expected(path)["tolerances"].items() if v is not None}
            except BadInput:
                kept = {}
        doc = expected_from(runs, preset, {**kept, **tolerances})
        from benchmark.files import atomic_write_text

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(path), json.dumps(doc, indent=1) + "\n")
        print(f"wrote {path}: {len(doc['runs'])} runs, numerics {describe_numerics(doc['numerics'])}")
        return 0
    print(f"expected: {len(expected['runs'])} runs of preset {expected.get('preset')}, made on "
          f"{describe_numerics(expected.get('numerics'))}")
    return 0 if compare(runs, expected) else 1


if __name__ == "__main__":
    sys.exit(main())
