"""What a user sees while a run goes: progress bars on a terminal, plain lines in logs, --quiet."""
from __future__ import annotations

import sys

import run_benchmark

TINY = ["--orderings", "textures,digits", "--suite", "textures", "digits", "--set", "data.max_train=40",
        "--set", "data.max_test=20", "--epochs", "1", "--set", "train.batch_size=20", "--strategies", "ft"]


def test_quiet_prints_only_where_the_results_went(tmp_path, capsys):
    assert run_benchmark.main(["--out", str(tmp_path), "-q", *TINY]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.strip().splitlines() == [err.strip().splitlines()[-1]]
    assert err.startswith("finished in ") and err.strip().endswith("micro/report.md")


def test_a_log_gets_one_line_per_epoch_and_step_and_no_bars(tmp_path, capsys):
    assert run_benchmark.main(["--out", str(tmp_path), *TINY]) == 0
    err = capsys.readouterr().err
    assert "task 1: epoch 1/1 loss" in err and "step 2 (digits)" in err and "\r" not in err
    assert err.strip().splitlines()[-1].startswith("finished in ")


def test_a_terminal_gets_progress_bars_with_rate_and_eta(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert run_benchmark.main(["--out", str(tmp_path), *TINY]) == 0
    err = capsys.readouterr().err
    assert "runs: 100%" in err and ("run/s]" in err or "s/run]" in err)  # the runs bar, with its rate
    assert "task 2 epoch 1/1" in err and ("it/s" in err or "s/it" in err)  # the epoch bar, with its rate
    assert "task 1: epoch 1/1 loss" in err  # log lines still appear, above the bars
