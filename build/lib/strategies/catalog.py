"""What each strategy is and takes, read from the strategy files without importing them (no torch):
for `run_benchmark.py --list`, which must answer in a moment.

A strategy file registers a dataclass (strategies/__init__.py): its docstring's first line is the
strategy's description, and each annotated field is a hyperparameter, with its type, its default,
and the comment on its line (or the comment lines just above it) as its help. The registry
(`strategies.available()`, `strategies.get()`) stays the authority; tests check that the two agree.
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
