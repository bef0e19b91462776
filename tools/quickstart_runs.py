"""The whole quickstart on one seed with plan fields changed, and one JSONL line of its figures:
what a recipe change does end to end (pre-training, VQA, retrieval, captions), seed by seed.

    python tools/quickstart_runs.py --seed 1 --name relations --plan pretrain_captions=first+one \
        pretrain_max_length=112 --out tools/results/quickstart_runs.jsonl
    python tools/quickstart_runs.py --table tools/results/quickstart_runs.jsonl

`--plan` takes `QuickstartPlan` fields as `tools/pretrain_runs.py` does. The run's directory,
report.json and figures included, is `--work/NAME-sSEED`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pretrain_runs import plan_from, run_or_table  # noqa: E402

from vlbert.quickstart.pipeline import run_quickstart  # noqa: E402

SUBTYPES = ("shape", "horizontal", "vertical", "closest", "furthest", "count")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="run", help="a label for the run in the JSONL file")
    parser.add_argument("--plan", nargs="*", default=[], metavar="FIELD=VALUE", help="QuickstartPlan fields")
    parser.add_argument("--base", choices=("default", "long", "smoke"), default="default", help="the plan changed")
    parser.add_argument("--ablation", action="store_true", help="the transfer table too")
    parser.add_argument("--work", default="runs/quickstart_runs", help="run directories")
    parser.add_argument("--out", help="JSONL file to append the run's line to")
    parser.add_argument("--table", help="print the runs of a JSONL file and stop")
    return parser


def run(args: argparse.Namespace) -> dict[str, object]:
    plan = plan_from(args.seed, args.plan, args.base)
    out = Path(args.work) / f"{args.name}-s{args.seed}"
    results = run_quickstart(out, ablation=args.ablation, plan=plan, progress=False)
    vqa = {key: round(value, 4) for key, value in results.vqa.items() if isinstance(value, float)}
    return {"name": args.name, "seed": args.seed, "plan": args.plan, "wall_seconds": round(results.wall_seconds, 1),
            "stage_seconds": {s.name: round(s.seconds, 1) for s in results.stages}, "vqa": vqa,
            "retrieval": dict(results.retrieval), "pretrain": dict(results.pretrain),
            "caption": dict(results.caption), "transfer": results.transfer}


def table(rows: list[dict[str, object]]) -> str:
    head = "name | seed | wall | nonrel | rel | " + " | ".join(SUBTYPES) + " | R@1 two-stage (ITC) | mirror h/v"
    lines = [head]
    for row in rows:
        vqa, ret, pre = row["vqa"], row["retrieval"], row["pretrain"]
        subtypes = " | ".join(f"{vqa.get(f'{s}_acc', float('nan')):.3f}" for s in SUBTYPES)
        lines.append(
            f"{row['name']} | {row['seed']} | {row['wall_seconds'] / 60:.1f} min | {vqa['nonrelational_acc']:.3f} | "
            f"{vqa['relational_acc']:.3f} | {subtypes} | {ret['t2i_r1']:.3f} ({ret['t2i_r1_itc']:.3f}) | "
            f"{pre.get('itm_mirror_preferred', float('nan')):.3f}/{pre.get('itm_mirror_vertical_preferred', float('nan')):.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_or_table(build_parser().parse_args(argv), run, table)


if __name__ == "__main__":
    raise SystemExit(main())
