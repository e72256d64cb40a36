"""What each strategy is and takes, read from the strategy files without importing them (no torch):
for `run_benchmark.py --list`, which must answer in a moment.

A strategy file registers a dataclass (strategies/__init__.py): its docstring's first line is the
strategy's description, and each annotated field is a hyperparameter, with its type, its default,
and the comment on its line (or the comment lines just above it) as its help. The registry
(`strategies.available()`, `strategies.get()`) stays the authority; tests check that the two agree.

A strategy class may also declare, as ClassVars (not hyperparameters, so never part of a run's id):
- `paper_name`: the method's name in the paper's tables ("CE", "LDIFS", ...); tables label a run
  "<ZS|LP>-init-<paper_name>" after its head initialisation (`method_label`);
- `paper_init`: the head initialisation that the method's name already implies ("zs" for FLYP, "lp"
  for LP-FT): under it the label is the bare name;
- `extra_forward`: the cost of the strategy's extra passes at every training step, in training steps
  (a frozen anchor's forward pass: about 1/3); `extra_epochs`: the passes it makes over a task's
  training split after the task (EWC's Fisher pass: 1 epoch of forward and backward passes).
  `--dry-run` counts both in its GPU-hours.
"""
from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Param:
    name: str
    type: str
    default: str
    help: str = ""


@dataclass
class Entry:
    name: str
    file: str
    description: str
    params: list[Param] = field(default_factory=list)
    paper_name: str | None = None  # the method's name in the paper's tables; None: the strategy's name
    paper_init: str | None = None  # the head init its name implies ("zs": FLYP), or None
    extra_forward: float = 0.0  # extra passes per training step, in training steps
    extra_epochs: float = 0.0  # extra passes over the training split after each task, in training epochs


_CLASSVARS = {"paper_name": str, "paper_init": str, "extra_forward": float, "extra_epochs": float}


def _number(node: ast.expr) -> float:
    """A constant arithmetic expression (1 / 3) of a ClassVar's value, evaluated without eval."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        a, b = _number(node.left), _number(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        return a * b if isinstance(node.op, ast.Mult) else a / b
    raise ValueError(f"not a constant number: {ast.unparse(node)}")


def _comments(source: str) -> dict[int, str]:
    """line number -> the text of the comment on it."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _registered_name(cls: ast.ClassDef) -> str | None:
    for d in cls.decorator_list:
        if (isinstance(d, ast.Call) and getattr(d.func, "id", None) == "register" and d.args
                and isinstance(d.args[0], ast.Constant) and isinstance(d.args[0].value, str)):
            return d.args[0].value
    return None


def _default(value: ast.expr | None) -> str:
    if value is None:
        return "(required)"
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "field":
        for kw in value.keywords:
            if kw.arg == "default":
                return ast.unparse(kw.value)
            if kw.arg == "default_factory":
                return ast.unparse(kw.value) + "()"
    return ast.unparse(value)


def read_file(path: Path) -> list[Entry]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    comments = _comments(source)
    out = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef) or not (name := _registered_name(node)):
            continue
        doc = (ast.get_docstring(node) or "").strip().splitlines()
        entry = Entry(name, f"strategies/{path.name}", doc[0] if doc else "")
        for item in node.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            if "ClassVar" in ast.unparse(item.annotation):
                kind = _CLASSVARS.get(item.target.id)
                if kind is str and isinstance(item.value, ast.Constant) and isinstance(item.value.value, str):
                    setattr(entry, item.target.id, item.value.value)
                elif kind is float and item.value is not None:
                    setattr(entry, item.target.id, _number(item.value))
                continue
            help_ = comments.get(item.lineno, "")
            if not help_:  # the comment lines just above
                above, k = [], item.lineno - 1
                while k >= 1 and lines[k - 1].strip().startswith("#"):
                    above.insert(0, comments.get(k, ""))
                    k -= 1
                help_ = " ".join(above)
            entry.params.append(Param(item.target.id, ast.unparse(item.annotation), _default(item.value), help_))
        out.append(entry)
    return out


def catalog(folder: Path = HERE) -> dict[str, Entry]:
    """name -> Entry of every strategy registered in `folder`'s files."""
    out = {}
    for p in sorted(folder.glob("*.py")):
        if p.name.startswith("_") or p.stem in ("base", "spec", "catalog"):
            continue
        for e in read_file(p):
            out[e.name] = e
    return dict(sorted(out.items()))


_CACHE: dict[Path, dict[str, Entry]] = {}


def cached() -> dict[str, Entry]:
    """catalog() of this checkout's strategies, read once per process (labels and the dry run's costs)."""
    if HERE not in _CACHE:
        _CACHE[HERE] = catalog(HERE)
    return _CACHE[HERE]


def method_label(name: str, head_init: str | None) -> str:
    """The paper's name of a strategy run with a head initialisation: "ZS-init-CE" (ft, zs), "LP-init-LDIFS"
    (ldifs, lp), "FLYP" (flyp under the zs init its name implies), "LP-init-FLYP" (flyp, lp). A strategy
    without a `paper_name` is named by its registry name ("LP-init-surgical"); without a head init the
    bare name is returned."""
    e = cached().get(name)
    base = (e.paper_name if e and e.paper_name else name)
    if head_init is None or (e is not None and e.paper_init == head_init):
        return base
    return f"{str(head_init).upper()}-init-{base}"


def extra_cost(name: str) -> tuple[float, float]:
    """(extra_forward, extra_epochs) of a strategy (0, 0 for one the catalog does not know)."""
    e = cached().get(name)
    return (e.extra_forward, e.extra_epochs) if e else (0.0, 0.0)


def describe(entries: dict[str, Entry], preset_specs: dict[str, list[str]] | None = None) -> str:
    """The text of `--list`'s strategy part; `preset_specs`: strategy -> lines about a preset's use of it."""
    lines = []
    for e in entries.values():
        lines.append(f"  {e.name:<14} {e.description}  [{e.file}]")
        for p in e.params:
            lines.append(f"      {p.name} ({p.type}) = {p.default}" + (f"  # {p.help}" if p.help else ""))
        for spec in (preset_specs or {}).get(e.name, []):
            lines.append(f"      {spec}")
    return "\n".join(lines)
