#!/usr/bin/env python
"""Convert an original vilbert-multi-task checkpoint into a vlbert model directory.

    python tools/convert_vilbert.py pytorch_model_9.bin out/vilbert-base \\
        [--config config/bert_base_6layer_6conect.json] [--task pretraining|vqa|retrieval|backbone]
        [--task-id N] [--tokenizer bert-base-uncased] [--answers trainval_label2ans.pkl]

The checkpoint is opened with `torch.load(weights_only=True)`. The result loads with
`vlbert.create_model("out/vilbert-base", task=...)`. Every original tensor dropped, every converted
tensor the task model has no place for and every original config key ignored is named. A 12-in-1
checkpoint (with task embeddings) gets task tokens; --task-id sets the id used when forward is
given none (default: 1 = VQA for --task vqa; 12-in-1's ids are in docs/migrating.md).
--tokenizer and --answers write the tokenizer and the VQA answer list into the directory, which
`vlbert predict` and `vlbert evaluate` read (docs/migrating.md).
"""

from __future__ import annotations

import argparse
import sys

from vlbert.eval.saved import add_tokenizer_and_answers
from vlbert.factory import convert_checkpoint
from vlbert.weights.convert_vilbert import ConversionReport


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="original pytorch_model_*.bin")
    parser.add_argument("out_dir", help="directory to write config.json + model.safetensors")
    parser.add_argument("--config", default=None, help="original config JSON (default: bert_base_6layer_6conect)")
    parser.add_argument("--task", default="pretraining", choices=["backbone", "pretraining", "vqa", "retrieval"],
                        help="the task model to write (default pretraining: the pre-training heads)")
    parser.add_argument("--task-id", type=int, default=None,
                        help="12-in-1 task token used when forward gets no task_ids (e.g. 8 = Flickr30k retrieval)")
    parser.add_argument("--tokenizer", default=None,
                        help="also write this tokenizer into the directory: a hub name (bert-base-uncased, the "
                             "original's), a tokenizer directory or a vocab.txt")
    parser.add_argument("--answers", default=None,
                        help="with --task vqa, also write this answer list: the original's label2ans file "
                             "(trainval_label2ans.pkl), a JSON list or one answer a line, in the head's order")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.answers is not None and args.task != "vqa":
        parser.error("--answers is for --task vqa (the answer list names the VQA head's outputs)")
    overrides = {} if args.task_id is None else {"default_task_id": args.task_id}
    try:
        report = convert_checkpoint(args.checkpoint, args.out_dir, config_json=args.config, task=args.task, **overrides)
        written = add_tokenizer_and_answers(args.out_dir, args.tokenizer, args.answers)
    except (OSError, ValueError, KeyError) as err:
        print(f"convert_vilbert: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out_dir}: {len(report.state_dict)} tensors converted")
    print_report(report, args.task)
    for line in written:
        print(f"wrote {line}")
    if args.tokenizer is None:
        print("no tokenizer written: vlbert predict and evaluate need one (--tokenizer bert-base-uncased)")
    if args.task == "vqa" and args.answers is None:
        print("no answer list written: vlbert predict and evaluate need one for VQA (--answers trainval_label2ans.pkl)")
    return 0


def print_report(report: ConversionReport, task: str) -> None:
    """What the conversion dropped, left out and ignored, one name a line."""
    print(f"dropped {len(report.dropped)} unused original tensors (q_dense and heads vlbert has no use for)"
          + (":" if report.dropped else ""))
    for key in report.dropped:
        print(f"  {key}")
    if report.not_loaded:
        print(f"not in the {task} model, so not written: {len(report.not_loaded)} converted tensors:")
        for key in report.not_loaded:
            print(f"  {key}")
    if report.ignored_config:
        print(f"ignored {len(report.ignored_config)} original config keys (they do not change the outputs):")
        for key, why in report.ignored_config.items():
            print(f"  {key}: {why}")
    if report.task_specific_tokens:
        default = report.default_task_id
        how = f"(default {default})" if default is not None else "(no default: pass task_ids, or convert with --task-id)"
        print(f"task tokens on: the checkpoint has 12-in-1's task embedding; forward takes task_ids {how}")
    if report.new_heads:
        print(f"newly initialised in the {task} model: {', '.join(report.new_heads)}")


if __name__ == "__main__":
    sys.exit(main())
