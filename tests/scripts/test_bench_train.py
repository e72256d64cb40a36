"""The training benchmark script runs on a tiny setting and prints its ratios and step breakdown."""
import re



def test_bench_train_prints_its_ratios(tiny_vit, capsys):
    from scripts.bench_train import main

    assert main(["--model", "test-tiny-vit", "--pretrained", "none", "--steps", "2", "--batch-size", "4",
                 "--repeats", "1", "--threads", "1", "--classes", "3"]) == 0
    out = capsys.readouterr().out
    ratios = {m.group(1): float(m.group(2)) for m in re.finditer(r"ratio (\S+) ([0-9.]+)", out)}
    assert set(ratios) == {"template/plain", "ldifs/ft"}
    assert all(r > 0 for r in ratios.values())
    assert "backward/forward" in out
    assert out.count("AdamW") == 4, out  # the four layout x optimiser variants
    phases = re.search(r"NHWC, AdamW fused \(now\) +forward +([0-9.]+) +backward +([0-9.]+) +clip +([0-9.]+) +optimizer +([0-9.]+)",
                       out)
    assert phases and all(float(v) >= 0 for v in phases.groups())
