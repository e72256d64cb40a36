"""Everything that can stop a plan, checked before any run trains, and reported in one go: the
device, the numeric path, the datasets, the weights, loading the model, and the strategies'
hyperparameters that depend on the model (e.g. LDIFS layer indices)."""
from __future__ import annotations

import pickle
import sys

from .runner import Resources


def missing_inputs(cfg: dict) -> list[str]:
    """One line per missing or unusable input (device, numeric path, datasets, weights); [] if none."""
    from benchmark.data import check_available
    from benchmark.models import check_weights

    from .config import device_problem
    from .numerics_reexec import numerics_problem

    from benchmark.reference_set import problems

    d = cfg["data"]
    missing = [p for p in [device_problem(cfg["device"]), numerics_problem(cfg["numerics"])] if p]
    refs = {(s["ref_images"], s["ref_texts"]) for s in cfg["strategies"] if "ref_images" in s and "ref_texts" in s}
    return (missing + check_available(cfg["suite"], d["root"], d["download"], d.get("variants"))
            + [line for images, texts in sorted(refs) for line in problems(images, texts, d)]  # zscl's reference set
            + check_weights(cfg["model"], d["download"]))


def load_and_check(cfg: dict, res: Resources, report: bool = True) -> bool:
    """Load the model into `res` once, up front (unreachable weights fail before any run starts), and
    build every strategy's plugins on it. False (after one line on stderr, if `report`) when either fails."""
    import strategies
    from benchmark.models import TaskModel, text_side

    import warnings

    m = cfg["model"]
    try:
        with warnings.catch_warnings():  # torch's note on a checkpoint's pickle protocol: the line below says more
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            fm = res.model(m, cfg["device"])
    except OSError as e:
        from .guards import file_problem

        if file_problem(e) is None:  # not the disk or a permission: the weights themselves
            return _weights_problem(m, e, report)
        raise  # a full or unwritable cache: run_benchmark names the path in one line
    except (RuntimeError, ValueError) as e:
        return _weights_problem(m, e, report)
    except (pickle.UnpicklingError, EOFError, KeyError, AttributeError, TypeError) as e:
        # torch.load with weights_only refuses a pickle of anything but tensors (nothing of it runs)
        return _weights_problem(m, ValueError(f"not a checkpoint of tensors ({type(e).__name__}); a file of anything "
                                              "else is refused, and nothing in it is run"), report)
    import copy

    from benchmark.text import terminal

    
    for spec in cfg["strategies"]:
        # each strategy sees a copy of the shared encoder: what its plugins() does to the model it is
        # given (which it must not; its runs then fail, experiment/runner.py) can change no other run
        probe_model = TaskModel(copy.deepcopy(fm.visual), fm.embed_dim, text=text_side(fm))
        try:
            strategies.from_config(spec).plugins(probe_model)
        except strategies.SpecError as e:
            if report:
                print(f"error: {terminal(e)}", file=sys.stderr)
            return False
        except Exception as e:  # noqa: BLE001 - a strategy's own code that fails before any run: one line
            where = strategies.fault_location(spec["name"], e)
            if where is None:
                raise
            if report:
                what = " ".join(str(e).split())[:300]
                print(f"error: strategy {spec['name']}: plugins() raised {type(e).__name__}"
                      f"{': ' + terminal(what) if what else ''} at {where}, before any run; fix the file",
                      file=sys.stderr)
            return False
    return True


def _weights_problem(m: dict, e: Exception, report: bool) -> bool:
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if report:
        print(f"error: cannot load model {m['name']} with pretrained={m.get('pretrained')!r}: {reason}. "
              "Weights other than 'packaged' must be downloadable or already in open_clip's cache.", file=sys.stderr)
    return False
