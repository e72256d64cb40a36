"""report.html: report.md as one self-contained HTML page (images embedded as data: URIs, styles inline,
no script and no server), to open from disk or send by mail. Rebuilt with report.md by the collector.

Only images under the experiment's plots/ folder are embedded (the report's own); a reference to a
missing image is left as a link and named in one warning line. Heading anchors are report.md's own
(`report.slug`), so the table of contents works in both.
"""
from __future__ import annotations

import base64
import html as _html
import re
import sys
from pathlib import Path

from benchmark.files import atomic_write_text

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; line-height: 1.45; color: #1b1b1b; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; text-align: left; vertical-align: top; }
th { background: #f1f1f1; }
code { background: #f4f4f4; padding: 0 0.2em; font-size: 0.92em; }
pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; }
img { max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
"""


def to_html(markdown_text: str, experiment_dir: Path, title: str) -> tuple[str, list[str]]:
    """(the page, the image references that could not be embedded)."""
    import markdown

    from .report import slug

    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code", "toc"],
                             extension_configs={"toc": {"slugify": lambda value, sep: slug(value)}})
    plots = (Path(experiment_dir) / "plots").resolve()
    missing: list[str] = []

    def embed(m: re.Match) -> str:
        src = _html.unescape(m.group(2))
        path = (Path(experiment_dir) / src).resolve()
        if path.parent != plots or path.suffix.lower() != ".png" or not path.is_file():
            missing.append(src)
            return m.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'{m.group(1)}"data:image/png;base64,{data}"'

    body = re.sub(r'(<img[^>]*?\ssrc=)"([^"]+)"', embed, body)
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
    return page, missing


def write_html(experiment_dir: Path, markdown_text: str | None = None) -> Path:
    """report.html beside report.md (read from disk unless given)."""
    experiment_dir = Path(experiment_dir)
    text = markdown_text if markdown_text is not None else (experiment_dir / "report.md").read_text(encoding="utf-8")
    page, missing = to_html(text, experiment_dir, f"Report: experiment {experiment_dir.name}")
    if missing:
        print(f"warning: report.html: {len(missing)} image(s) not found under plots/, left as links: "
              f"{', '.join(missing[:5])}", file=sys.stderr)
    path = experiment_dir / "report.html"
    atomic_write_text(path, page)
    return path
