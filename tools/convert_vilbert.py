#!/usr/bin/env python
"""Convert an original vilbert-multi-task checkpoint into a vlbert model directory.

    python tools/convert_vilbert.py pytorch_model_9.bin out/vilbert-base \\
        [--config config/bert_base_6layer_6conect.json] [--task pretraining|vqa|retrieval|backbone]

The checkpoint is opened with `torch.load(weights_only=True)`. The result loads with
`vlbert.create_model("out/vilbert-base", task=...)`.
"""

from __future__ import annotations

import argparse
import sys

from vlbert.weights import convert_checkpoint


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="original pytorch_model_*.bin")
    parser.add_argument("out_dir", help="directory to write config.json + model.safetensors")
    parser.add_argument("--config", default=None, help="original config JSON (default: bert_base_6layer_6conect)")
    parser.add_argument("--task", default="pretraining", choices=["backbone", "pretraining", "vqa", "retrieval"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = convert_checkpoint(args.checkpoint, args.out_dir, config_json=args.config, task=args.task)
    except (OSError, ValueError, KeyError) as err:
        print(f"convert_vilbert: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out_dir}: {len(report.state_dict)} tensors converted")
    print(f"dropped {len(report.dropped)} unused original tensors (q_dense and heads vlbert has no use for)")
    if report.new_heads:
        print(f"newly initialised in the {args.task} model: {', '.join(report.new_heads)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
