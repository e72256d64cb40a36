"""run_benchmark.py commands in processes forked from one interpreter that has already imported the
project (torch, open_clip, Avalanche, pandas: 8-13 s of every fresh interpreter on a 2-core machine).

For the tests about what separate processes do to one experiment (kill -9 at a fault point, two
processes at once, a Ray driver killed mid-plan): each command is still a process of its own, with its
own pid, environment, working folder, stdin (/dev/null), stdout, stderr and exit status (minus the
signal's number when a signal ended it, as with subprocess), and it runs `cli.main(argv)`,
what the script runs; only the imports were done once, before the fork. A test about the interpreter's
start-up itself (Ctrl-C during the imports) or about what a shell user sees keeps a fresh interpreter.

The forking process (the zygote) never runs any of the project's code beyond its imports, so no
thread pool, cache or RNG state of a run is inherited. It answers one request at a time over a pipe.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from experiment.executors.processes import die_with_parent

ROOT = Path(__file__).resolve().parents[1]

# What the zygote imports before it forks anything, by default: the command and what a run loads.
PROJECT_IMPORTS = """
from experiment import cli
from experiment import config, driver, preflight, runner
from experiment.executors import local, processes
from evaluation.reporting import collect
"""

_ZYGOTE = r"""
import atexit, json, os, signal, sys, tempfile, time, traceback
sys.path.insert(0, sys.argv[1])
replies = os.fdopen(int(sys.argv[2]), "w")
exec(compile(sys.argv[3], "<imports>", "exec"), {"__name__": "__imports__"})


def die_with_parent():
    # experiment.executors.processes.die_with_parent's prctl, here because a zygote may be one that
    # imports none of the project (tests/experiment/test_process_side_effects.py)
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        pass


def child(req):
    code = 1
    try:
        if req.get("exit_handlers"):  # the command's own atexit handlers run at its exit, not the zygote's
            atexit._clear()
        die_with_parent()
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        opened = {}  # one path for both (stderr to stdout): opened once
        for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
            if path not in opened:
                opened[path] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(opened[path], fd)
        replies.close()
        os.environ.clear()
        os.environ.update(req["env"])
        tempfile.tempdir = None  # read from TMPDIR again, as a fresh interpreter would
        os.chdir(req["cwd"])
        if req.get("fsize") is not None:  # a file-size limit (ulimit -f): writes beyond it fail with EFBIG
            import resource
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (req["fsize"], req["fsize"]))
        if req.get("user") is not None:  # a non-root user's process: its groups, gid and uid, for good
            os.setgroups([])
            os.setgid(req["user"])
            os.setuid(req["user"])
            die_with_parent()  # the kernel clears the parent-death signal when the credentials change
        if req.get("script"):  # `python SCRIPT ARGV...`: the script run as __main__ with its arguments
            import runpy
            sys.argv = [req["script"], *req["argv"]]
            runpy.run_path(req["script"], run_name="__main__")
            code = 0
        elif req.get("code") is not None:  # `python -c CODE`
            sys.argv = ["-c"]
            exec(compile(req["code"], "<string>", "exec"), {"__name__": "__main__"})
            code = 0
        else:
            from experiment import cli
            code = cli.main(req["argv"])
    except SystemExit as e:  # argparse's own errors
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        if req.get("exit_handlers"):
            atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def reap(pid, timeout):
    end = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if time.monotonic() >= end:
            return None
        time.sleep(0.02)


print("ready", file=replies, flush=True)
for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "run":
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            child(req)
        reply = {"pid": pid}
    else:
        reply = {"returncode": reap(req["pid"], req["timeout"])}
    print(json.dumps(reply), file=replies, flush=True)
"""


class Zygote:
    """The forking interpreter; `run` starts a command, and returns a Popen-like handle. `imports`: the
    Python code it runs before it forks anything (default: the project's command and run modules); `env`:
    its environment while it does (default: this process's)."""

    def __init__(self, imports: str = PROJECT_IMPORTS, env: dict | None = None):
        self.folder = Path(tempfile.mkdtemp(prefix="cfbench-forked-"))
        read, write = os.pipe()
        with open(self.folder / "zygote.log", "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", _ZYGOTE, str(ROOT), str(write), imports], cwd=ROOT,
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, text=True,
                                         pass_fds=(write,), preexec_fn=die_with_parent, env=env)
        os.close(write)
        self.replies = os.fdopen(read, "r")
        self.n = 0
        self.ready = False  # the imports go on in the background until the first command needs them

    def _wait_ready(self) -> None:
        if not self.ready:
            assert self._reply(600) == "ready", (self.folder / "zygote.log").read_text()[-3000:]
            self.ready = True

    def _reply(self, timeout: float) -> str:
        if not select.select([self.replies], [], [], timeout)[0]:
            raise TimeoutError(f"the zygote did not answer in {timeout:g} s")
        line = self.replies.readline()
        if not line:
            raise RuntimeError("the zygote died: " + (self.folder / "zygote.log").read_text()[-3000:])
        return line.strip()

    def _ask(self, req: dict, timeout: float) -> dict:
        self._wait_ready()
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._reply(timeout))

    def run(self, argv: list[str], env: dict | None = None, cwd: Path = ROOT, fsize: int | None = None,
            user: int | None = None, exit_handlers: bool = False, script: Path | None = None,
            output: Path | None = None, code: str | None = None) -> "Forked":
        """`fsize`: the largest file the command may write, in bytes (RLIMIT_FSIZE, SIGXFSZ ignored); `user`:
        the uid (and gid, without supplementary groups) the command runs as, when the zygote runs as root;
        `exit_handlers`: the atexit handlers that the command registers run when it ends, as at the exit of
        a fresh interpreter (the zygote's own are not run); `script`: a Python file that the process runs
        with `argv` instead of the command, as `python SCRIPT ARGV...` runs it (as __main__), after the
        same imports (a script of scripts/ that imports the project's modules); `output`: one path for stdout
        and stderr both (a FIFO: read as it comes); `code`: Python code that the process runs instead of the
        command, as `python -c CODE` runs it (`argv` unused)."""
        self.n += 1
        out, err = (output, output) if output else (self.folder / f"{self.n}.out", self.folder / f"{self.n}.err")
        pid = self._ask({"op": "run", "argv": [str(a) for a in argv], "env": dict(os.environ if env is None else env),
                         "cwd": str(cwd), "stdout": str(out), "stderr": str(err), "fsize": fsize,
                         "user": user, "exit_handlers": exit_handlers, "script": script and str(script),
                         "code": code},
                        60)["pid"]
        return Forked(self, pid, out, err)

    def close(self) -> None:
        self.proc.kill()  # it holds nothing to clean up; its interpreter's shutdown alone takes seconds
        self.proc.wait()
        self.proc.stdin.close()
        self.replies.close()
        for p in self.folder.iterdir():
            p.unlink()
        self.folder.rmdir()


class Forked:
    """A command's process: pid, poll, wait, communicate (stdout and stderr as text), kill."""

    def __init__(self, zygote: Zygote, pid: int, out: Path, err: Path):
        self.zygote, self.pid, self.out, self.err = zygote, pid, out, err
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.wait(0, raise_on_timeout=False)

    def wait(self, timeout: float | None = None, raise_on_timeout: bool = True) -> int | None:
        if self.returncode is None:
            t = 24 * 3600 if timeout is None else timeout
            self.returncode = self.zygote._ask({"op": "wait", "pid": self.pid, "timeout": t}, t + 60)["returncode"]
            if self.returncode is None and raise_on_timeout:
                raise subprocess.TimeoutExpired(f"forked run_benchmark pid {self.pid}", timeout)
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        return self.out.read_text(errors="replace"), self.err.read_text(errors="replace")

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)
