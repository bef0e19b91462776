"""``vlbert evaluate --model DIR --task TASK``: the task's metrics on a split of a shard directory.

The metrics JSON (stdout and ``--out``) has a ``data`` entry: the samples of the split, how many
were skipped and why; the same is said in one line on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vlbert.tasks import SPELLINGS, task_named

HELP = "evaluate a saved model (VQA accuracy, Recall@K, BLEU-4/CIDEr, MLM/ITM accuracy)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a model directory (a run's model/ or best/)")
    parser.add_argument("--adapter", help="an adapter directory (a LoRA run's adapter/) to apply to --model")
    parser.add_argument("--task", required=True, choices=sorted(SPELLINGS), help="the task whose metrics to compute")
    parser.add_argument("--data", required=True, help="shard directory")
    parser.add_argument("--split", default="test", help="manifest split to evaluate (default: test)")
    parser.add_argument("--out", help="write the metrics JSON here")
    parser.add_argument("--config", help="YAML run configuration for the eval/data sections")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. eval.retrieval_mode=all-pairs")


def run(args: argparse.Namespace) -> int:
    from vlbert.eval.split import evaluate_model_dir
    from vlbert.runconfig import load_run_config

    cfg = load_run_config(args.config, args.overrides, task=task_named(args.task))
    result = evaluate_model_dir(cfg, args.model, args.data, args.split, args.adapter)
    print(result.data.skip_line(f"evaluation of split {args.split}"), file=sys.stderr, flush=True)
    text = json.dumps({**result.metrics, "data": result.data.as_dict()}, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0
