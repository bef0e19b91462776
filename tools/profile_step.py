"""Where a pre-training step spends its time: torch.profiler over `vlbert pretrain`'s step.

Runs the bench's step (`vlbert.bench.train_step.vlbert_step`: forward, the MLM/region/ITM losses,
backward, AdamW) for a preset, a few warm-up steps, then profiles `--steps` steps and prints the
top operators by self CPU time as a markdown table (docs/benchmarks.md, "Profile of a step").
Time it alone on the machine: other processes change the split.

    python tools/profile_step.py --preset vilbert-base --batch 8 --tokens 36 --regions 36 --steps 3
    python tools/profile_step.py --preset tiny --steps 2 --top 5    # a smoke run
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from vlbert.bench.train_step import make_inputs, vlbert_step


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="vilbert-base")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=36)
    parser.add_argument("--regions", type=int, default=36, help="regions per image (the IMG token is added)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--mlm-scoring", choices=("masked", "all"), default="masked")
    return parser


def profile_table(events: list, steps: int, top: int) -> str:
    """The `top` operators by self CPU time: per step, milliseconds and share of the step."""
    total = sum(e.self_cpu_time_total for e in events)  # microseconds, every op once
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    lines = ["| operator | calls / step | self CPU ms / step | share |", "|---|---|---|---|"]
    for e in rows:
        lines.append(f"| `{e.key}` | {e.count / steps:.0f} | {e.self_cpu_time_total / 1e3 / steps:.1f} "
                     f"| {e.self_cpu_time_total / total:.1%} |")
    lines.append(f"| all operators | | {total / 1e3 / steps:.1f} | 100% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = torch.device("cpu")
    inputs = make_inputs(args.preset, args.batch, args.tokens, args.regions, device)
    _, step = vlbert_step(args.preset, device, inputs, autocast=None, mlm_scoring=args.mlm_scoring)
    for _ in range(args.warmup):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    print(f"# {args.preset}, batch {args.batch}, {args.tokens} tokens, {args.regions} regions, "
          f"{torch.get_num_threads()} threads, {args.steps} profiled steps, MLM scored at {args.mlm_scoring} tokens")
    print(profile_table(list(prof.key_averages()), args.steps, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
