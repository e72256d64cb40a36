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


def _is_dataclass(cls: ast.ClassDef) -> bool:
    for d in cls.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if (getattr(target, "id", None) or getattr(target, "attr", None)) == "dataclass":
            return True
    return False


class SourceError(ValueError):
    """A strategy file that cannot be read as Python source: 'line N: what'."""


def _source(path: Path) -> str:
    """The file's text in the encoding Python would import it with (its coding line, else UTF-8)."""
    raw = path.read_bytes()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        return raw.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as e:
        line = raw[:getattr(e, "start", 0)].count(b"\n") + 1 if isinstance(e, UnicodeDecodeError) else None
        raise SourceError(f"{'line ' + str(line) + ': ' if line else ''}not readable as Python source "
                          f"({type(e).__name__}: {e}); save it as UTF-8") from None


def _parse(path: Path) -> tuple[str, ast.Module]:
    source = _source(path)
    try:
        return source, ast.parse(source)
    except (SyntaxError, ValueError) as e:
        where = f"line {e.lineno}: " if getattr(e, "lineno", None) else ""
        raise SourceError(f"{where}{type(e).__name__}: {getattr(e, 'msg', e)}") from None


def _import_problem(tree: ast.Module) -> str | None:
    """What reading tells of importing the file: a top-level import of a package that is not installed,
    a top-level `raise` or `sys.exit()`. (What only running it shows is the registry's to say.)"""
    import importlib.util

    for node in tree.body:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
        for name in names:
            top = name.partition(".")[0]
            try:
                missing = importlib.util.find_spec(top) is None
            except (ImportError, ValueError):
                missing = True
            if missing:
                return f"line {node.lineno}: ModuleNotFoundError: No module named {top!r}"
        call = node.value if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) else None
        if isinstance(node, ast.Raise) or (call is not None and ast.unparse(call.func) in ("sys.exit", "exit", "quit")):
            return f"line {node.lineno}: the file {'raises' if isinstance(node, ast.Raise) else 'exits'} when imported"
    return None


def registered_names(path: Path) -> set[str]:
    """The names `path` registers, as far as reading it tells (none if it cannot be parsed)."""
    try:
        _, tree = _parse(path)
    except (SourceError, OSError):
        return set()
    return {n for node in tree.body if isinstance(node, ast.ClassDef) and (n := _registered_name(node))}


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


def read_file(path: Path, problems: dict[str, str] | None = None) -> list[Entry]:
    """The strategies `path` registers. Raises SourceError for a file that is not Python source; a class
    that the registry would refuse (strategies.registration_problem) is left out, its line in `problems`."""
    from .spec import registration_problem

    source, tree = _parse(path)
    static = _import_problem(tree)
    if static:
        raise SourceError(static)
    lines = source.splitlines()
    comments = _comments(source)
    out = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or not any(
                getattr(d.func if isinstance(d, ast.Call) else d, "id", None) == "register" for d in node.decorator_list):
            continue
        name = _registered_name(node)
        fields = [i.target.id for i in node.body if isinstance(i, ast.AnnAssign) and isinstance(i.target, ast.Name)
                  and "ClassVar" not in ast.unparse(i.annotation)]
        problem = registration_problem(name if name is not None else "(not a string)", fields, _is_dataclass(node))
        if problem:
            if problems is not None:
                line = min([d.lineno for d in node.decorator_list] or [node.lineno])  # as the import reports it
                problems[f"strategies/{path.name}"] = f"line {line}: {problem}"
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


def catalog(folder: Path = HERE, problems: dict[str, str] | None = None) -> dict[str, Entry]:
    """name -> Entry of every strategy registered in `folder`'s files, by the registry's rules: a file
    that cannot be read or parsed, a class the registry would refuse, and a name that two files register
    (but in the file named after it) are left out, each with its line in `problems` (file -> problem).
    What only importing a file shows (a failed import, an exception at import) is the registry's to say."""
    from .spec import clash_problem

    found: dict[str, list[Entry]] = {}
    problems = {} if problems is None else problems
    for p in sorted(folder.glob("*.py")):
        if p.name.startswith("_") or p.stem in ("base", "spec", "catalog"):
            continue
        try:
            entries = read_file(p, problems)
        except (SourceError, OSError) as e:
            problems[f"strategies/{p.name}"] = str(e)
            continue
        for e in entries:
            found.setdefault(e.name, []).append(e)
    out = {}
    for name, entries in found.items():
        owner = next((e for e in entries if Path(e.file).stem == name), None)
        if owner is not None or len(entries) == 1:
            out[name] = owner or entries[0]
        for e in entries if len(entries) > 1 else []:
            if e is not owner:
                problems[e.file] = clash_problem(name, e.file, owner.file if owner else None,
                                                 [x.file for x in entries if x is not e])
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
    from benchmark.text import terminal as t  # a docstring or comment is printed, never obeyed

    lines = []
    for e in entries.values():
        lines.append(f"  {t(e.name):<14} {t(e.description)}  [{t(e.file)}]")
        for p in e.params:
            lines.append(f"      {t(p.name)} ({t(p.type)}) = {t(p.default)}" + (f"  # {t(p.help)}" if p.help else ""))
        for spec in (preset_specs or {}).get(e.name, []):
            lines.append(f"      {t(spec)}")
    return "\n".join(lines)
