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
