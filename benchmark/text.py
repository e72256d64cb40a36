"""Record text is data: strings from records, configs and strategy files, escaped for where they are
shown, so that none of them can act there (a terminal's escape sequences, Markdown links and images,
HTML tags, LaTeX commands, matplotlib's mathtext). Pure standard library: every layer may call it.

Ordinary names and labels (letters, digits, `_ . , : ; = + - / > ( ) % [ ] " '` and spaces, where no link
can form) come out unchanged, so that the reports of ordinary runs read as before; anything else is
escaped character by character.
"""
from __future__ import annotations

import re

# Characters that no output format acts on where these strings land (table cells, list items, labels);
# an underscore only between letters or digits (Markdown reads `_x_` as emphasis).
_PLAIN = re.compile(r"[\w .,:;=+\-/>()%\[\]\"']*")
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "|": "\\|"}
_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
          ">": r"\textgreater{}"}


def _code_point(c: str) -> str:
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def terminal(text: object) -> str:
    """`text` with every character a terminal could act on (C0 and C1 controls: ESC, CR, newline, BEL;
    DEL; Unicode format characters such as the bidirectional overrides; line separators) written out
    as `\\x1b`, `\\u202e`, ...: one line, shown as it is."""
    s = str(text)
    return s if s.isprintable() else "".join(c if c.isprintable() else _code_point(c) for c in s)


def _plain(s: str) -> bool:  # no link or image can form: `](` never appears
    return _PLAIN.fullmatch(s) is not None and "](" not in s and not _EDGE_UNDERSCORE.search(s)


# What a string hyperparameter of a strategy may hold (a layer name, a mode, a path): it lands in run
# ids' labels, tables and plots, so nothing there may read it as markup. strategies.build and the
# records' schema apply it.
VALUE_RULE = re.compile(r"[\w.,:;=+\-/ ]{0,200}")
VALUE_RULE_TEXT = "letters, digits, spaces and . , : ; = + - / _ (at most 200)"


def value_problem(value: object) -> str | None:
    """Why a hyperparameter value (a string, or a list of them, nested) breaks VALUE_RULE; None if not."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str) and not VALUE_RULE.fullmatch(v):
            return f"{terminal(v[:60])!r} holds other characters than {VALUE_RULE_TEXT}"
        if isinstance(v, (list, tuple)):
            stack.extend(v)
    return None


def markdown(text: object) -> str:
    """`text` as literal Markdown (and HTML) text in a line or a table cell: controls written out, ASCII
    punctuation backslash-escaped, `< > &` as entities, `|` escaped for tables. Ordinary names unchanged."""
    s = terminal(text)
    if _plain(s):
        return s
    out = []
    for c in s:
        if c in _MD_ENTITIES:
            out.append(_MD_ENTITIES[c])
        elif c.isascii() and not c.isalnum() and c != " " and c.isprintable():
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def markdown_code(text: object) -> str:
    """`text` as a Markdown code span: fenced with more backticks than it holds in a row (so it cannot
    close the span), controls written out, a `|` escaped for tables. Text with `<`, `>` or `&` is written
    as escaped plain text instead (markdown()), so that no tag stands in the file even inside a span."""
    if any(c in str(text) for c in "<>&"):
        return markdown(text)
    s = terminal(text).replace("|", "\\|")
    runs = [len(m) for m in re.findall(r"`+", s)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def html(text: object) -> str:
    """`text` as HTML text or an attribute value."""
    import html as _html

    return _html.escape(terminal(text), quote=True)


def latex(text: object) -> str:
    """`text` as literal LaTeX text (OT1/T1 safe: `< >` as text commands), controls written out."""
    return "".join(_LATEX.get(c, c) for c in terminal(text))


def mathtext(text: object) -> str:
    """`text` as a matplotlib label: `$` escaped so that it is never parsed as mathtext (an unbalanced
    or malformed formula stops the figure)."""
    return terminal(text).replace("$", r"\$")


def did_you_mean(name: object, known: list[str]) -> str:
    """'; did you mean X?' for the known name closest to `name` (difflib, then ignoring case), or ''."""
    import difflib

    text = str(name)
    close = difflib.get_close_matches(text, known, n=1, cutoff=0.6)
    if not close:
        lower = {k.lower(): k for k in known}
        close = [lower[c] for c in difflib.get_close_matches(text.lower(), list(lower), n=1, cutoff=0.6)]
    return f"; did you mean {close[0]!r}?" if close and close[0] != text else ""
