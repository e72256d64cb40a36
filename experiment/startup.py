"""What the command and its --jobs helpers do between reading their arguments and validating them: the
heavy imports (torch, Avalanche, open_clip), held against Ctrl-C and after the process is prepared to
write nothing outside --out and the cache; and the one line for memory that ran out while loading them."""
from __future__ import annotations

import warnings


def heavy_imports(say: bool = True, at_once: bool = False) -> None:
    """Import the training side. `say`: the interruption line is printed (not by a helper); `at_once`: a
    Ctrl-C ends the process there and then (experiment.interrupts.held)."""
    from experiment import interrupts

    # Avalanche imports qpsolvers for GEM-style strategies, which warns that no QP solver is installed.
    warnings.filterwarnings("ignore", message="no QP solver found")
    with interrupts.held(say=say, at_once=at_once):  # torch, Avalanche, numpy: not safe to interrupt
        from benchmark.process_env import prepare_command

        prepare_command()  # nothing written outside --out and the cache (benchmark/process_env.py)
        import experiment.executors.local  # noqa: F401
    # Scores come from evaluation/, after every task; Avalanche's own evaluator is left empty on purpose.
    warnings.filterwarnings("ignore", message="No loggers specified")


def memory_problem(e: BaseException) -> str | None:
    """One line for memory that ran out (a MemoryError, or a library that could not be mapped under an
    address-space limit, `ulimit -v`); None for any other error."""
    import errno

    text = " ".join(str(e).split())
    if not (isinstance(e, MemoryError) or getattr(e, "errno", None) == errno.ENOMEM
            or "failed to map segment" in text or "cannot allocate memory" in text.lower()):
        return None
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        limit = (f"the address-space limit (ulimit -v) is {soft / 2**30:.1f} GiB"
                 if soft != resource.RLIM_INFINITY else "no address-space limit is set")
    except (ImportError, OSError, ValueError):
        limit = "the address-space limit is unknown"
    what = f"loading a library ({text[:160]})" if isinstance(e, ImportError) else f"{type(e).__name__} {text[:160]}".strip()
    return (f"out of memory: {what}; {limit}, and torch with its libraries maps several GiB: raise the limit "
            "(ulimit -v unlimited) or free memory, then run again; nothing was written by this step")
