"""Places the command cannot write: a file where a folder belongs, a full disk, a folder another user
cannot write, a file-size limit: one line naming the place, exit 2, no partial results."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest


from conftest import TINY, files_under, paths_under, run_main

BOUND_S = 20  # every case here answers within this (in-process: no interpreter start-up)


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """The heavy imports (torch, open_clip, Avalanche) once, so that the bounds time the cases themselves."""
    import benchmark.models  # noqa: F401
    import experiment.config  # noqa: F401


def test_a_file_where_the_experiment_folder_belongs_is_one_line(tmp_path, capsys):
    (tmp_path / "micro").write_text("not a folder")
    code, _, err, took = run_main(["--out", str(tmp_path), "--strategies", "ft"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f"{tmp_path / 'micro'}: cannot write results there" in lines[0]
    assert "Traceback" not in err and took < BOUND_S and sorted(p.name for p in tmp_path.iterdir()) == ["micro"]


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_partial_results(tmp_path, capsys, monkeypatch):
    import errno

    import benchmark.files as files

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    code, _, err, _ = run_main(["-q", "--out", str(tmp_path), *TINY, "--strategies", "ft"], capsys)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and "Traceback" not in err, err[-3000:]
    assert len(errors) == 1 and ": No space left on device: the file system is full" in errors[0], err
    left = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or p.name == "done"]
    assert left == []

NOBODY = 65534  # the unprivileged uid the non-root cases run as when the tests run as root


def test_a_file_where_the_tensorboard_folder_belongs_is_one_line_before_training(tmp_path, capsys):
    (tmp_path / "micro").mkdir()
    (tmp_path / "micro" / "tensorboard").write_text("not a folder")
    code, _, err, took = run_main(["--out", str(tmp_path), "--tensorboard", "--strategies", "ft", *TINY], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0] == (f"error: {tmp_path / 'micro' / 'tensorboard'}: cannot write results there (not a folder); "
                        "make it writable (or a folder), or choose another --out")
    assert paths_under(tmp_path) == [tmp_path / "micro", tmp_path / "micro" / "tensorboard"] and took < BOUND_S


@pytest.mark.parametrize("where", ["CFBENCH_CACHE", "data.cache_dir"])
def test_a_cache_folder_that_cannot_be_written_is_one_line_before_training(tmp_path, capsys, monkeypatch, where):
    """Checked with --out's probe before any model or data is loaded (a file where the folder belongs:
    the case root meets too; a folder without write permission is the non-root test's below)."""
    bad = tmp_path / "a-file"
    bad.write_text("")
    argv = ["--out", str(tmp_path / "out"), "--strategies", "ft", *TINY]
    if where == "CFBENCH_CACHE":
        monkeypatch.setenv("CFBENCH_CACHE", str(bad))
        words = f"error: the cache folder {bad} (CFBENCH_CACHE): cannot write the cache there ("
        fix = "; set CFBENCH_CACHE to a writable folder"
    else:
        argv += ["--set", f"data.cache_dir={bad}"]
        words = f"error: data.cache_dir {bad}: cannot write the cache there ("
        fix = "; set data.cache_dir to a writable folder, or leave it unset for CFBENCH_CACHE"
    code, _, err, took = run_main(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0].startswith(words) and lines[0].endswith(fix), lines[0]
    assert files_under(tmp_path / "out") == [] and took < BOUND_S


@pytest.fixture
def shared_tmp():
    """A folder that the unprivileged user can reach (pytest's tmp_path is private to root)."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="cfbench-nonroot-"))
    base.chmod(0o755)
    yield base
    for p in [base, *base.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(base)


def _as_user(shared_tmp: Path):
    """(uid to run as, chown to the user, environment): root runs the command as uid 65534, any other user
    as itself; a home the command cannot write."""
    root = os.geteuid() == 0
    home = shared_tmp / "home"
    home.mkdir(mode=0o555)  # a home the command cannot write: nothing may go there

    def own(path: Path) -> None:
        if root:
            os.chown(path, NOBODY, NOBODY)
    return (NOBODY if root else None), own, {"HOME": str(home)}


@pytest.mark.parametrize("what", ["read-only --out", "read-only CFBENCH_CACHE"])
def test_a_non_root_user_gets_one_line_for_a_folder_it_cannot_write(shared_tmp, forked, what):
    """As root the tests run the command as uid 65534 (root writes into a 0555 folder regardless), with a
    home it cannot write; --out or the cache is a 0555 folder it does not own. One line, exit 2, before
    any model or data is loaded, and nothing written anywhere. The command is a process forked after the
    imports (tests/forked.py) that gives up root's groups, gid and uid for 65534's before it runs: the
    file system's permission checks are a non-root user's; its exit handlers run as at an interpreter's
    exit (the matplotlib folder's stand-in is removed by one)."""
    import tempfile

    user, own, env = _as_user(shared_tmp)
    out, cache = shared_tmp / "out", shared_tmp / "cache"
    for folder in (out, cache):
        folder.mkdir()
        own(folder)
    locked = out if what == "read-only --out" else cache
    locked.chmod(0o555)
    before = sorted(Path(tempfile.gettempdir()).glob("cfbench-matplotlib-*"))
    t0 = time.perf_counter()
    env = {k: v for k, v in {**os.environ, **env, "CFBENCH_CACHE": str(cache)}.items()
           if k not in ("XDG_CACHE_HOME", "MPLCONFIGDIR")}
    p = forked.run(["--out", str(out), "--strategies", "ft", *TINY], env, cwd=shared_tmp, user=user,
                   exit_handlers=True)
    _, err = p.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in err, (p.returncode, err[-2000:])
    if locked is out:
        assert lines[0] == f"error: --out {out}: cannot write results there (Permission denied); choose a writable folder"
    else:
        assert lines[0] == (f"error: the cache folder {cache} (CFBENCH_CACHE): cannot write the cache there "
                            "(Permission denied); set CFBENCH_CACHE to a writable folder")
    # the cache may hold matplotlib's font cache (imported with Avalanche, before the checks): a cache
    # file like any other, written where the cache is writable; nothing else is written anywhere
    assert files_under(out, shared_tmp / "home") == [] and time.perf_counter() - t0 < 120
    assert all(p.parent == cache / "matplotlib" for p in files_under(cache)) if locked is out else files_under(cache) == []
    assert sorted(Path(tempfile.gettempdir()).glob("cfbench-matplotlib-*")) == before  # its stand-in, removed at exit


def test_a_file_size_limit_is_one_line_exit_2_and_leaves_no_partial_file(tmp_path, forked):
    """A full disk, as far as a test can make one without privileges: RLIMIT_FSIZE of 512 bytes (SIGXFSZ
    ignored, so that writes beyond it fail with EFBIG as they fail with ENOSPC on a full disk; ENOSPC
    itself is the in-process test above). The first file larger than that (a run's config.json, or a
    cache file where the cache is cold) fails: one line naming it, exit 2, no temporary file, no
    records, no done marker. The warm default cache keeps matplotlib's font cache out of it (matplotlib
    writes that file itself, not atomically: see docs/reliability.md). The command is a process forked
    after the imports (tests/forked.py), the limit set before it runs: what is checked is what it writes."""
    import matplotlib.font_manager  # noqa: F401  (its font cache exists before the limit applies)

    from benchmark.cache_files import cache_dir

    out = tmp_path / "out"
    t0 = time.perf_counter()
    p = forked.run(["-q", "--out", str(out), "--strategies", "ft", *TINY], fsize=512)
    _, err = p.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in err, (p.returncode, err[-2000:])
    assert lines[0].startswith(("error: " + str(out), "error: " + str(cache_dir()))), lines[0]
    assert ": File too large: the file is larger than this process may write (ulimit -f)" in lines[0]
    left = [q for q in files_under(out) if q.name.endswith(".tmp") or q.name in ("done", "records.json")]
    stray = [q for q in cache_dir().rglob(f".*.{p.pid}.*.tmp")]
    assert left == [] and stray == [] and time.perf_counter() - t0 < 120
    for q in files_under(out):  # what was written is whole
        json.loads(q.read_text())
