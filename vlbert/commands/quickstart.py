"""``vlbert quickstart``: generate the built-in data, pre-train, fine-tune VQA, retrieval and
captioning, and print the results beside the published baselines."""

from __future__ import annotations

import argparse
from dataclasses import replace

HELP = "the whole product on built-in Sort-of-CLEVR data, in minutes on a CPU"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/quickstart", help="output directory (default runs/quickstart)")
    parser.add_argument("--ablation", action="store_true",
                        help="also measure the transfer table: VQA from the pre-trained model and from scratch at "
                             "100%%, 10%% and 1%% of the labels, and retrieval from scratch (report.json's 'transfer'; "
                             "about 18 minutes more on 2 CPU cores)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the generated data and of every stage's training (default 0)")
    parser.add_argument("--plan", choices=("default", "long", "smoke"), default="default",
                        help="default: about 14 minutes on 2 CPU cores, after the install; long: several times "
                             "the steps of every stage, about 52 minutes; smoke: a few steps of everything "
                             "(measured times and results: docs/results.md)")
    parser.add_argument("--smoke", action="store_true", help="the same as --plan smoke")


def run(args: argparse.Namespace) -> int:
    from vlbert.quickstart.pipeline import run_quickstart
    from vlbert.quickstart.plan import QuickstartPlan

    name = "smoke" if args.smoke else args.plan
    plan = {"smoke": QuickstartPlan.smoke, "long": QuickstartPlan.long, "default": QuickstartPlan}[name]()
    plan = replace(plan, seed=args.seed)
    run_quickstart(args.out, ablation=args.ablation, plan=plan)
    print(f"\nreport.json and figures in {args.out}")
    return 0
