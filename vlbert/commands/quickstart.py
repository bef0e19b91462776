"""``vlbert quickstart``: generate the built-in data, pre-train, fine-tune VQA, retrieval and
captioning, and print the results beside the published baselines."""

from __future__ import annotations

import argparse

HELP = "the whole product on built-in Sort-of-CLEVR data, in minutes on a CPU"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/quickstart", help="output directory (default runs/quickstart)")
    parser.add_argument("--ablation", action="store_true",
                        help="also fine-tune VQA on 10%% of the labels from the pre-trained model and from scratch")
    parser.add_argument("--smoke", action="store_true", help="a few steps of everything (checks the pipeline)")


def run(args: argparse.Namespace) -> int:
    from vlbert.quickstart.pipeline import run_quickstart
    from vlbert.quickstart.plan import QuickstartPlan

    plan = QuickstartPlan.smoke() if args.smoke else QuickstartPlan()
    run_quickstart(args.out, ablation=args.ablation, plan=plan)
    print(f"\nreport.json and figures in {args.out}")
    return 0
