"""``vlbert pretrain`` and ``vlbert finetune {vqa,retrieval,caption}``: a run from a YAML config
plus ``key=value`` overrides (see `vlbert.runconfig`)."""

from __future__ import annotations

import argparse
import json

from vlbert.tasks import TASKS, short_name, task_named

PRETRAIN_HELP = "pre-train (MLM, masked regions, ITM, ITC) on shards"
FINETUNE_HELP = "fine-tune for VQA, retrieval or captioning"
FINETUNE_CHOICES = tuple(short_name(task) for task in TASKS if task != "pretraining")  # vqa retrieval caption


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML run configuration (e.g. configs/vqa_vqav2.yaml)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if out_dir has checkpoints")
    parser.add_argument("--override-resume", action="store_true",
                        help="resume even though settings that change the result differ from out_dir/config.yaml, "
                             "with the new values")  # fmt: skip
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. train.max_steps=100 data.root=DIR")


def add_pretrain_arguments(parser: argparse.ArgumentParser) -> None:
    _add_run_options(parser)


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=sorted(FINETUNE_CHOICES), help="the task to fine-tune for")
    _add_run_options(parser)


def _run(args: argparse.Namespace, task: str) -> int:
    from vlbert.run.training import run_training
    from vlbert.runconfig import load_run_config

    cfg = load_run_config(args.config, args.overrides, task=task)
    result = run_training(cfg, resume=not args.no_resume, override_resume=args.override_resume)
    print(f"trained {result.steps} steps; model in {result.model_dir}")
    if result.metrics:
        print(json.dumps(result.metrics, indent=1))
    return 0


def run_pretrain(args: argparse.Namespace) -> int:
    return _run(args, "pretraining")


def run_finetune(args: argparse.Namespace) -> int:
    return _run(args, task_named(args.task))
