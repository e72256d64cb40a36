"""Prints "The paper protocol, setting by setting": for each setting that moves a reproduced table, the
authors' value, the value the paper presets run (read from the validated presets and the code's own
constants, never typed here), whether they agree, and the function that implements it.

    python scripts/protocol_table.py            # the Markdown table of docs/design.md
    python scripts/protocol_table.py --check    # exit 1 when docs/design.md holds another table

tests/scripts/test_protocol_table.py runs --check, so the table in the docs cannot drift from what runs.
"""
from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "design.md"
START, END = "<!-- protocol-table:start -->", "<!-- protocol-table:end -->"
PRESETS = ("paper-single", "paper-continual")
OPEN = object()  # the reference's value is not fixed by its code


def _config_module():
    from experiment import config

    return config


def where(obj) -> str:
    """`path:qualname` of a function or class, relative to the repository (fails if it moved away)."""
    path = Path(inspect.getsourcefile(obj)).resolve().relative_to(ROOT).as_posix()
    return f"`{path}:{obj.__qualname__}`"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(_fmt(x) for x in v) + "}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return str(v)


def rows(cfg: dict) -> list[tuple[str, str, str, str, str]]:
    """(setting, reference, ours, same, where) for the validated preset `cfg`."""
    import strategies
    from benchmark import checkpoints, reference_probe as RP, training
    from benchmark.data import sources, splits, transforms, variants
    from experiment.dryrun import split_sizes
    from benchmark.data.registry import entry

    t, d = cfg["train"], cfg["data"]
    ldifs = strategies.get("ldifs")()
    out = []

    def row(setting, ref_text, ref_value, ours_value, impl, ours_text=None):
        same = "open" if ref_value is OPEN else ("yes" if ref_value == ours_value else "**no**")
        out.append((setting, ref_text, ours_text if ours_text is not None else _fmt(ours_value), same, impl))

    m = cfg["model"]
    row("model", "open_clip ViT-B-32, openai weights", ("ViT-B-32", "openai"), (m["name"], m["pretrained"]),
        "`configs/paper-*.yaml: model`", f"{m['name']}, {m['pretrained']}")
    row("optimiser", "AdamW, lr 1e-05, weight decay 0.1", (1e-5, 0.1), (t["lr"], t["weight_decay"]),
        where(training.make_template), f"AdamW, lr {_fmt(t['lr'])}, weight decay {_fmt(t['weight_decay'])}")
    row("batch size", "128", 128, t["batch_size"], where(training.make_template))
    row("schedule", "500 warm-up steps, then cosine (per task)", 500, t["warmup_steps"],
        where(training.WarmupCosinePlugin), f"{t['warmup_steps']} warm-up steps, then cosine (per task)")
    row("gradient clipping", "global norm 1", 1.0, t["grad_clip"], where(training.GradClipPlugin),
        f"global norm {_fmt(t['grad_clip'])}")
    row("precision", "fp32", "fp32", t["precision"], where(training.make_template))
    ref_epochs = {"Cars": 35, "DTD": 76, "EuroSAT": 12, "GTSRB": 11, "MNIST": 10, "CIFAR10": 10, "CIFAR100": 10,
                  "RESISC45": 15, "SUN397": 14, "SVHN": 10}
    row("epochs per dataset", _fmt(ref_epochs), ref_epochs, {k: t["epochs"][k] for k in ref_epochs},
        where(training.epochs_for))
    row("train preprocessing", "open_clip's train transform", "openclip", d["train_transform"],
        where(transforms.pil_transform), f"data.train_transform: {d['train_transform']}")
    row("validation split", "10% of the train split, seed 0, at most 20,000", (0.1, 20000),
        (d["val_fraction"], d["val_cap"]), where(splits.train_val_split),
        f"{_fmt(d['val_fraction'] * 100)}% of the train split, seed {splits.SPLIT_SEED}, at most {d['val_cap']:,}")
    dtd = split_sizes("DTD", d)
    row("DTD train / val images", "official train split only: 1,692 / 188", (1692, 188), (dtd["train"], dtd["val"]),
        where(entry), f"{dtd['train']:,} / {dtd['val']:,} (data.variants DTD: "
        f"{d.get('variants', {}).get('DTD', variants.names_of('DTD')[0])})")
    eu_var = d.get("variants", {}).get("EuroSAT", variants.names_of("EuroSAT")[0])
    eu = entry("EuroSAT", eu_var)
    eu_text = (f"fixed folders {eu['folder']}/{{train,val,test}}" if eu["kind"] == "image_folder_splits"
               else "seeded 80/10/10 draw of the 27,000 images")
    eu_sizes = split_sizes("EuroSAT", d)
    row("EuroSAT images", "fixed task-vectors folders: 21,600 / 2,700 / 2,700", "image_folder_splits", eu["kind"],
        where(sources._read_image_folder_splits if eu["kind"] == "image_folder_splits" else splits.fixed_split),
        f"{eu_text}: {eu_sizes['train']:,} / {eu_sizes['val']:,} / {eu_sizes['test']:,} (data.variants EuroSAT: {eu_var})")
    probe = RP.settings_of(t)
    row("linear probe", "full-batch AdamW on L2-normalised features", "reference", t.get("probe", "sklearn"),
        where(RP.fit), f"train.probe: {t.get('probe', 'sklearn')}")
    row("probe steps", "1,000", 1000, probe and probe["steps"], where(RP.fit),
        f"{probe['steps']:,}" if probe else "(sklearn: L-BFGS to convergence)")
    row("probe weight decay", "0.01 (AdamW's default)", 0.01, RP.REFERENCE_WEIGHT_DECAY if probe else None,
        where(RP.fit), _fmt(RP.REFERENCE_WEIGHT_DECAY) if probe else "(sklearn: C grid)")
    row("probe learning rates", "{0.01, 0.05, 0.1, 0.5, 1}, best validation accuracy, smallest on a tie",
        [0.01, 0.05, 0.1, 0.5, 1.0], probe and sorted(probe["lr"]), where(RP.choose),
        (_fmt(sorted(probe["lr"])) + ", best validation accuracy, smallest on a tie") if probe else "(sklearn: C grid)")
    row("LP metric refit", "whole train split (EuroSAT: its train folder)", True, probe is not None,
        where(RP.metric_and_head), "whole train split (EuroSAT: its train folder)" if probe else "none")
    row("LP-init head", "fitted on the task's training split, rate chosen on a 90/10 split of it", True,
        probe is not None, where(RP.metric_and_head),
        "fitted on the task's training split, rate chosen on a 90/10 split of it" if probe else
        "the LP metric's probe")
    cifar = entry("CIFAR100", d.get("variants", {}).get("CIFAR100"))
    cifar_names = "torchvision's (underscores)" if cifar["classnames"] == "from_data" else "CLIP's list (spaces)"
    row("CIFAR100 class names", "torchvision's (underscores)", "torchvision's (underscores)", cifar_names,
        where(sources.classnames_of), cifar_names)
    cars = entry("Cars", d.get("variants", {}).get("Cars"))
    cars_rule = {"underscore_to_space": "devkit names, '_' as spaces, '/' kept",
                 "underscore_slash_to_space": "devkit names, '_' and '/' as spaces",
                 "as_is": "devkit names as they are"}[cars.get("classname_rule", "underscore_slash_to_space")]
    row("Cars class names", "devkit names, '_' as spaces, '/' kept", "devkit names, '_' as spaces, '/' kept", cars_rule,
        where(sources.classnames_of), cars_rule)
    row("scored model of a task", "checkpoint K (0..100) of each task, K given to its evaluation script (the "
        "code fixes no K; its README's example is 50; 100 is the nearest to the end it can load)", OPEN, t.get("checkpoint", "end"), where(checkpoints.CheckpointPlugin),
        f"train.checkpoint: {t.get('checkpoint', 'end')} (K: checkpoint K)")
    row("LDIFS", "lambda 10; ln_pre + blocks 3, 6, 9, 12; anchor: previous task's encoder",
        (10.0, "reference", "previous"), (ldifs.lam, ldifs.layers, ldifs.anchor), where(type(ldifs)),
        f"lambda {_fmt(ldifs.lam)}; layers: {ldifs.layers}; anchor: {ldifs.anchor}")
    return out


def table() -> str:
    C = _config_module()
    tables = []
    for p in PRESETS:
        tables.append(rows(C.validate(C.load_preset(p))))
    if tables[0] != tables[1]:  # the two presets differ only in their orderings
        raise SystemExit("paper-single and paper-continual differ in a protocol setting; align them")
    lines = ["| setting | reference | paper presets | same | where |", "|---|---|---|---|---|"]
    for setting, ref, ours, same, impl in tables[0]:
        lines.append(f"| {setting} | {ref} | {ours} | {same} | {impl} |")
    return "\n".join(lines)


def documented() -> str | None:
    text = DOC.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return None
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the table in docs/design.md")
    args = ap.parse_args(argv)
    t = table()
    if args.check:
        if documented() != t:
            print(f"docs/design.md's protocol table differs from what runs; paste the output of "
                  f"`python scripts/protocol_table.py` between {START} and {END}", file=sys.stderr)
            return 1
        return 0
    print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
