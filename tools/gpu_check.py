#!/usr/bin/env python
"""Check the GPU path: a short pre-training and a short VQA fine-tune of `vilbert-base` in bf16
autocast, each against fp32 from the same initialisation on the same batches. Prints a table
(losses' largest relative difference, step time, peak memory, MFU against the GPU's dense bf16
peak) and exits 1 when a check fails, 2 when the check cannot run (no CUDA, unknown peak).

    python tools/gpu_check.py [--steps 6] [--batch 16] [--tolerance 0.05] [--peak-tflops 989]
                              [--out gpu_check.json]
    python tools/gpu_check.py --dry-run   # the same code on the CPU with the tiny model
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vlbert.bench.gpu_check import CheckConfig, run_checks, table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = CheckConfig()
    parser.add_argument("--dry-run", action="store_true", help="run on the CPU with the tiny model (tests the tool)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps per run")
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--tolerance", type=float, default=defaults.tolerance,
                        help="largest |bf16 - fp32| / |fp32| of a step's loss")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the GPU's dense bf16 peak, TFLOP/s (default: looked up by device name)")
    parser.add_argument("--out", help="also write the report as JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = CheckConfig(dry_run=args.dry_run, steps=args.steps, batch=args.batch, tolerance=args.tolerance,
                      peak_tflops=args.peak_tflops)  # fmt: skip
    if args.dry_run:
        cfg.num_answers = 10
    try:
        report = run_checks(cfg)
    except RuntimeError as error:
        print(f"gpu_check: {error}", file=sys.stderr)
        return 2
    print(table(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report.as_dict(), indent=1))
    for failure in report.failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
