"""Steps per second and MFU of each quickstart training stage (pre-training, VQA, retrieval, captioning).

Runs each stage through the product's own `run_training` with the quickstart's configuration, on
built-in data generated for the run, and times `--steps` steps beyond a `--warmup`-step run (setup
cancels out). FLOPs per step come from torch's `FlopCounterMode`, the peak from a 2048² matmul in
the same run. Run it alone on the machine:

    python tools/bench_quickstart_stages.py --steps 40 --warmup 10 --out stages.json
    python tools/bench_quickstart_stages.py --compile --stages vqa    # the torch.compile trade

With `--compile` each stage is measured twice, eager and with `train.compile=true`, and the table
adds the compile time (setup beyond the eager run's) and the steps after which compiling pays.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace

import torch

from vlbert.bench.quickstart_stages import STAGES, measure_stages
from vlbert.quickstart.plan import QuickstartPlan


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per stage")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--images", type=int, default=2000, help="training images generated for the run")
    parser.add_argument("--compile", action="store_true", help="also measure with train.compile=true")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = replace(QuickstartPlan(), train_images=args.images, val_images=16, test_images=16)
    stages = args.stages.split(",")
    peak, speeds = measure_stages(plan, stages, args.steps, args.warmup)
    print(f"# quickstart stages, batch {plan.batch_size}, {torch.get_num_threads()} threads, "
          f"{args.steps} steps after {args.warmup}; fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(f"{'stage':<10} {'ms/step':>8} {'steps/s':>8} {'GFLOP/step':>11} {'GFLOP/s':>8} {'MFU':>5}")
    for s in speeds:
        print(f"{s.stage:<10} {s.seconds_per_step * 1e3:8.1f} {s.steps_per_s:8.2f} {s.step_flops / 1e9:11.2f} "
              f"{s.achieved_flops_per_s / 1e9:8.1f} {s.mfu:5.2f}")
    report = {"matmul_peak_flops_per_s": peak, "threads": torch.get_num_threads(), "stages": [asdict(s) for s in speeds]}
    if args.compile:
        _, compiled = measure_stages(plan, stages, args.steps, args.warmup, overrides=("train.compile=true",))
        report["compiled"] = [asdict(s) for s in compiled]
        print(f"{'compiled':<10} {'ms/step':>8} {'eager':>8} {'compile s':>10} {'pays after':>11}")
        for eager, comp in zip(speeds, compiled):
            saved = eager.seconds_per_step - comp.seconds_per_step
            cost = comp.setup_s - eager.setup_s
            pays = f"{cost / saved:.0f} steps" if saved > 0 else "never"
            print(f"{comp.stage:<10} {comp.seconds_per_step * 1e3:8.1f} {eager.seconds_per_step * 1e3:8.1f} "
                  f"{cost:10.1f} {pays:>11}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
