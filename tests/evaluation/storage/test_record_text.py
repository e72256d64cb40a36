"""Record text is data: records are read by a strict schema (types, times, names, printable strings),
a done marker's checksum cannot be switched off by emptying it, and every string that reaches a
terminal, Markdown or LaTeX is escaped for it (benchmark/text.py)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmark.text import latex, markdown, markdown_code, terminal
from evaluation.storage.identity import hashed_config, run_id
from evaluation.storage.records import CONFIG, DONE, RECORDS, check_records, check_run, records_digest
from experiment import cli

ROOT = Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------- the escaping helpers


def test_terminal_writes_out_what_a_terminal_would_act_on():
    assert terminal("ldifs") == "ldifs" and terminal("café 中") == "café 中"
    assert terminal("a\x1b[2Jb\nc\rd\x07") == "a\\x1b[2Jb\\x0ac\\x0dd\\x07"
    assert terminal("evil\u202egnp.exe") == "evil\\u202egnp.exe"  # a bidirectional override
    assert terminal("\x9b31m") == "\\x9b31m"  # the one-byte CSI of C1


@pytest.mark.parametrize("plain", ["ldifs", "lp_ft", "mnist>fashion_mnist", "textures > digits",
                                   "ldifs lam=1.0 [train.lr=0.01]", "ewc (n=1)", "held-out dLP"])
def test_ordinary_names_and_labels_are_unchanged_in_markdown(plain):
    assert markdown(plain) == plain


def test_markdown_leaves_no_link_image_tag_or_cell_break():
    out = markdown("![x](http://evil/a.png) <script>alert(1)</script> | [y](javascript:z) _e_ `c`")
    assert "<" not in out and "](" not in out and "![" not in out
    assert " \\| " in out and "\\_e\\_" in out and "\\`c\\`" in out
    assert "&lt;script&gt;" in out
    assert markdown("a\x1b[31mb") == "a\\\\x1b\\[31mb"  # controls written out, then the backslash escaped


def test_a_code_span_cannot_be_closed_from_inside():
    assert markdown_code('{"lam": 30.0}') == '`{"lam": 30.0}`'
    assert markdown_code("x`y") == "``x`y``" and markdown_code("`x") == "`` `x ``"
    assert markdown_code("<b>") == "&lt;b&gt;"  # no tag in the file, not even in a span
    assert markdown_code("a|b") == "`a\\|b`"


def test_latex_escapes_every_special_character():
    assert latex(r"a_b & 50% $x$ #1 {y} ~ ^ \cmd <>") == (
        r"a\_b \& 50\% \$x\$ \#1 \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{}cmd "
        r"\textless{}\textgreater{}")


# ---------------------------------------------------------------- the records' schema


@pytest.fixture(scope="module")
def good(tiny_experiment) -> tuple[Path, dict]:
    """A finished run's folder and its records."""
    folder = sorted(p for p in (tiny_experiment / "runs").iterdir() if check_run(p) is None)[0]
    return folder, json.loads((folder / RECORDS).read_text())


@pytest.mark.parametrize("change, words", [
    (lambda r: r.update(complete="yes"), "complete: Input should be a valid boolean"),
    (lambda r: r.update(complete=1), "complete: Input should be a valid boolean"),
    (lambda r: r["R"][0].__setitem__(0, "0.5"), "R.0.0: Input should be a valid number"),
    (lambda r: r["R"][0].__setitem__(0, True), "R.0.0: Input should be a valid number"),
    (lambda r: r.update(wall_s=-30.0), "wall_s: Input should be greater than or equal to 0"),
    (lambda r: r["steps"][1].update(train_s=-1.0), "steps.1.train_s: Input should be greater than or equal to 0"),
    (lambda r: r.update(started="yesterday"), "started: String should match pattern"),
    (lambda r: r["config"]["strategy"].update(name="ft\x1b[2J"), "a string with control characters"),
    (lambda r: r["config"]["strategy"].update(mode="<script>"), "config.strategy.mode: a hyperparameter value"),
    (lambda r: r.update(ordering=["textures\n", "digits"]), "ordering.0: a string with control characters"),
    (lambda r: r.update(suite=["textures", ""]), "suite.1: String should have at least 1 character"),
    (lambda r: r["env"].update({"cpu\x1b]0;x\x07": "x"}), "a string with control characters"),
])
def test_the_schema_is_strict(good, change, words):
    rec = json.loads(json.dumps(good[1]))
    change(rec)
    why = check_records(rec)
    assert why is not None and words in why, why
    assert why.isprintable()


def test_the_schema_accepts_a_finished_run(good):
    assert check_records(good[1], good[0].name) is None


def _forge(experiment: Path, source: Path, change, seed: int) -> Path:
    """A copy of run `source` whose records `change` edits, made consistent by hand as a forger would:
    the config hashed again, the folder renamed to the new id, the done marker's checksum rewritten."""
    rec = json.loads((source / RECORDS).read_text())
    rec["config"]["seed"] = seed  # a run of its own
    change(rec)
    rid = run_id(hashed_config(rec["config"]))
    rec["run_id"] = rec["config"]["run_id"] = rid
    folder = experiment / "runs" / rid
    folder.mkdir(parents=True)
    (folder / CONFIG).write_text(json.dumps(rec["config"]))
    text = json.dumps(rec)
    (folder / RECORDS).write_text(text)
    (folder / DONE).write_text(records_digest(text) + "\n")
    return folder


def test_an_empty_done_marker_does_not_switch_tamper_evidence_off(good, tmp_path):
    folder = tmp_path / "runs" / good[0].name
    shutil.copytree(good[0], folder)
    rec = json.loads((folder / RECORDS).read_text())
    assert rec.get("code") and check_run(folder) is None
    rec["R"][-1][0] = 1.0  # an edited accuracy ...
    (folder / RECORDS).write_text(json.dumps(rec))
    (folder / DONE).write_text("")  # ... and a truncated marker
    why = check_run(folder)
    assert why is not None and "its done marker is empty" in why
    # records from before checksums (and code fingerprints) keep their empty marker
    old = ROOT / "tests" / "data" / "sample_experiment" / "runs" / "060ba6089bc2"
    assert (old / DONE).read_text() == "" and check_run(old) is None


def test_forged_record_text_is_left_out_or_escaped_everywhere(good, tmp_path, capsys, tiny_experiment):
    exp = tmp_path / "micro"
    shutil.copytree(tiny_experiment, exp)
    hostile = "![pwn](http://evil.example/x.png)<script>alert(1)</script>\\input{/etc/passwd}"
    # refused by the schema: a terminal escape in the strategy's name, a negative wall time, "yes"
    _forge(exp, good[0], lambda r: r["config"]["strategy"].update(name="ft\x1b[31mRED"), 101)
    _forge(exp, good[0], lambda r: r.update(wall_s=-1000.0), 102)
    _forge(exp, good[0], lambda r: r.update(complete="yes"), 103)
    # printable, so accepted: markup in a free text field of the config (the weights' path) and the CPU's name
    kept = _forge(exp, good[0], lambda r: (r["config"]["model"].update(pretrained=hostile),
                                           r["env"]["numerics"].update(cpu=hostile)), 104)
    named = _forge(exp, good[0], lambda r: r["config"]["strategy"].update(name=hostile), 105)
    code = cli.main(["--collect-only", "--out", str(tmp_path), "--jobs", "1", "--orderings", "textures,digits",
                     "--suite", "textures", "digits"])
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    assert "\x1b" not in out.out + out.err and "Traceback" not in out.err
    left_out = [x for x in out.err.splitlines() if "is left out of the leaderboard" in x]
    assert len(left_out) == 3 and any("control characters" in x for x in left_out)
    assert any("wall_s" in x for x in left_out) and any("complete" in x for x in left_out)
    for name in ("report.md", "tables.md", "summary.md"):
        for line in (exp / name).read_text().splitlines():
            assert "<script" not in line and "](http" not in line and "\x1b" not in line, (name, line)
            assert "![" not in line or (line.startswith("![") and "](plots/" in line), (name, line)
    report = (exp / "report.md").read_text()
    board = (exp / "leaderboard.csv").read_text()
    assert "&lt;script&gt;" in report and kept.name in board and named.name in board  # data: kept, and escaped
    assert "Compute time: -" not in report
    tex = (exp / "tables.tex").read_text()
    assert "\x1b" not in tex and "\\input{" not in tex and "\\textbackslash{}input\\{" in tex
