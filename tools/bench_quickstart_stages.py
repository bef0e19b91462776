"""Steps per second and MFU of each quickstart training stage (pre-training, VQA, retrieval, captioning).

Runs each stage through the product's own `run_training` with the quickstart's configuration, on
built-in data generated for the run, and times `--steps` steps beyond a `--warmup`-step run (setup
cancels out). FLOPs per step come from torch's `FlopCounterMode`, the peak from a 2048² matmul in
the same run. Run it alone on the machine:

    python tools/bench_quickstart_stages.py --steps 40 --warmup 10 --out stages.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace

import torch

from vlbert.bench.quickstart_stages import STAGES, measure_stages
from vlbert.quickstart.plan import QuickstartPlan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per stage")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--images", type=int, default=2000, help="training images generated for the run")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    plan = replace(QuickstartPlan(), train_images=args.images, val_images=16, test_images=16)
    peak, speeds = measure_stages(plan, args.stages.split(","), args.steps, args.warmup)
    print(f"# quickstart stages, batch {plan.batch_size}, {torch.get_num_threads()} threads, "
          f"{args.steps} steps after {args.warmup}; fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(f"{'stage':<10} {'ms/step':>8} {'steps/s':>8} {'GFLOP/step':>11} {'GFLOP/s':>8} {'MFU':>5}")
    for s in speeds:
        print(f"{s.stage:<10} {s.seconds_per_step * 1e3:8.1f} {s.steps_per_s:8.2f} {s.step_flops / 1e9:11.2f} "
              f"{s.achieved_flops_per_s / 1e9:8.1f} {s.mfu:5.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"matmul_peak_flops_per_s": peak, "threads": torch.get_num_threads(),
                       "stages": [asdict(s) for s in speeds]}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
