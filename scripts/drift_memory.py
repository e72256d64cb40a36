"""What feature drift's pre-trained features cost in memory for a real open_clip architecture.

    python scripts/drift_memory.py [--model ViT-B-32] [--image-size 224] [--sample 64] [--datasets 10]

Builds the architecture with random weights (no download: the feature shapes are those of the real
model), runs evaluation.scoring.drift.tap_features on `--sample` random images on one CPU thread, and prints
the bytes one dataset's pre-trained features take (every process holds one such set per dataset of
the suite, and the on-disk cache stores the same), the total for `--datasets` datasets, the time the
pass took and the rise of the process's peak resident memory while it ran.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32", help="open_clip architecture name (default: ViT-B-32)")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--sample", type=int, default=None, help="images per dataset (default: drift's default)")
    ap.add_argument("--datasets", type=int, default=10, help="datasets in the suite (default: the paper's 10)")
    args = ap.parse_args(argv)

    import open_clip
    import torch

    from benchmark.models import TaskModel
    from evaluation.scoring.drift import DEFAULT_SAMPLE, tap_features

    if args.model not in open_clip.list_models():
        print(f"error: --model {args.model!r} is not an open_clip architecture; see open_clip.list_models()",
              file=sys.stderr)
        return 2
    sample = args.sample or DEFAULT_SAMPLE
    torch.set_num_threads(1)
    clip = open_clip.create_model(args.model, pretrained=None, force_image_size=args.image_size)
    embed_dim = clip.visual.output_dim
    model = TaskModel(clip.visual, embed_dim, False)
    images = torch.randn(sample, 3, args.image_size, args.image_size)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    feats = tap_features(model, images)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    one = sum(f.numel() * f.element_size() for f in feats)
    print(f"{args.model} at {args.image_size} px: {len(feats)} feature maps, first {tuple(feats[0].shape[1:])}, "
          f"last {tuple(feats[-1].shape[1:])}")
    print(f"one dataset's pre-trained drift features ({sample} images, float32): {one / 2**20:.1f} MiB; "
          f"{args.datasets} datasets: {args.datasets * one / 2**30:.2f} GiB ({one} bytes per dataset)")
    print(f"the pass over {sample} images on 1 CPU thread: {took:.1f} s; peak resident memory "
          f"{before / 2**10:.0f} -> {after / 2**10:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
