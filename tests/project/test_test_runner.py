"""The test runner `make test` relies on: pytest-xdist's `--dist loadgroup` keeps the tests of one
`xdist_group` on one worker, so that a file's module fixture (a Ray instance, a wheel, runs trained for
the file) is made once. pytest 9.2 with pytest-xdist 3.8 silently stopped doing so (every test went to
any worker), which doubled the cost of those fixtures without failing anything; this test fails instead."""
from __future__ import annotations

import os
import subprocess
import sys

GROUPED = '''
import os, pytest
pytestmark = pytest.mark.xdist_group("one")

@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    with open(os.path.join(os.environ["GROUPED_OUT"], f"grouped_{i}"), "w") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"])
'''
FREE = '''
import pytest

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    pass
'''


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "test_free.py").write_text(FREE)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup",
                          "test_grouped.py", "test_free.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, "GROUPED_OUT": str(tmp_path)})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    workers = [(tmp_path / f"grouped_{i}").read_text() for i in range(6)]
    assert len(set(workers)) == 1 and workers[0].startswith("gw"), workers


def test_the_conftest_imports_none_of_the_heavy_libraries():
    """pytest-xdist's controller imports conftest.py only to hand tests out: at import, conftest.py loads no
    torch, Avalanche or open_clip (its preparation of a process that runs tests is its pytest_configure);
    the controller used to spend 9 s importing them before starting the workers."""
    from conftest import ROOT

    code = ("import sys; sys.path.append(sys.argv[1]); import conftest; "
            "print(sorted(m for m in ('torch', 'avalanche', 'open_clip', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "tests")], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]


def test_the_tests_that_fork_commands_share_one_worker():
    """conftest's collection hook puts every test that uses `forked` in FORKED_GROUP (one forked-from
    interpreter a session, 13 CPU-s of imports, not one per worker), and refuses one in another group."""
    import types

    import pytest

    import conftest

    def item(name, fixtures, group=None):
        marks = [pytest.mark.xdist_group(group).mark] if group else []
        return types.SimpleNamespace(nodeid=name, fixturenames=fixtures, path=conftest.ROOT / name, marks=marks,
                                     get_closest_marker=lambda _, m=marks: m[-1] if m else None,
                                     add_marker=lambda mark, m=marks: m.append(mark.mark))

    free, user, ray = item("a.py", ["tmp_path"]), item("b.py", ["forked"]), item("c.py", ["forked"], conftest.FORKED_GROUP)
    conftest.pytest_collection_modifyitems([free, user, ray])
    assert free.marks == [] and [m.args for m in user.marks] == [m.args for m in ray.marks] == [(conftest.FORKED_GROUP,)]
    with pytest.raises(pytest.UsageError, match="second forked-from interpreter"):
        conftest.pytest_collection_modifyitems([item("d.py", ["forked"], "other")])
