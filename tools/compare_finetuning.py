#!/usr/bin/env python
"""Compare fine-tuning strategies for VQA on the built-in Sort-of-CLEVR data (docs/finetuning.md).

Each strategy (`train.finetune` settings, see --list) fine-tunes the same pre-trained model for VQA
with 100 % and 10 % of the training labels (`data.label_fraction`), and the table reports test
accuracy, trainable parameters, training time per step (setup included, no evaluation during
training) and the size of what the run saves for the task (the adapter for LoRA and prompt tuning,
else the whole model). Without --pretrained and --data, the tool first writes shards and pre-trains
a model of the quickstart's size itself. The distillation strategy's teacher is the `full`
strategy's model trained on all labels (so run `full` too).

    python tools/compare_finetuning.py --out runs/compare-finetuning
    python tools/compare_finetuning.py --pretrained runs/quickstart/pretrain/model --data runs/quickstart/shards
    python tools/compare_finetuning.py --smoke --out /tmp/compare   # seconds: tiny sizes, 2 steps each
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch

from vlbert.cli import main as vlbert_main
from vlbert.eval.split import evaluate_model_dir
from vlbert.quickstart.plan import SMALL_SIZES
from vlbert.run.training import run_training
from vlbert.runconfig import load_run_config

STRATEGIES: dict[str, list[str]] = {
    "full": [],
    "heads": ["train.finetune.trainable=[poolers, heads]"],
    "coattention": ["train.finetune.trainable=[coattention, poolers, heads]"],
    "gradual": ["train.finetune.unfreeze_every={unfreeze_every}"],
    "llrd": ["train.finetune.layer_decay=0.8"],
    "lora": ["train.finetune.peft=lora"],
    "prompt": ["train.finetune.peft=prompt"],
    "adversarial": ["train.finetune.adversarial=true"],
    "distill": ["train.finetune.teacher={teacher}"],
}
NOTES = {
    "full": "every parameter trains (the default)",
    "heads": "poolers and the VQA head only",
    "coattention": "co-attention blocks, poolers and head; both streams frozen",
    "gradual": "ULMFiT: one more level from the top every max_steps/10 steps",
    "llrd": "layer-wise lr decay 0.8 per level from the top",
    "lora": "peft LoRA r=8 on self- and co-attention projections, head trained",
    "prompt": "8 learned prefix tokens on the text stream, head trained",
    "adversarial": "VILLA-style PGD on the embeddings (2 steps) + KL consistency",
    "distill": "KL to the `full` model trained on 100 % of the labels",
}
SMALL_MODEL = ["model.name=tiny", *(f"model.overrides.{key}={json.dumps(value)}" for key, value in SMALL_SIZES.items()
                                    if key != "v_feature_size")]  # the quickstart's size; features from the data


class Row(NamedTuple):  # a NamedTuple: the docs test loads this file without registering it as a module
    strategy: str
    label_fraction: float
    accuracy: float  # VQA accuracy on the test split
    trainable_params: int
    step_seconds: float  # training wall time / steps (setup included)
    saved_mb: float  # adapter (peft) or model weights


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", help="a pre-trained model directory (default: pre-train one)")
    parser.add_argument("--data", help="Sort-of-CLEVR shards with region features (default: write them)")
    parser.add_argument("--out", default="runs/compare-finetuning", help="runs, shards and results.jsonl go here")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated (see --list)")
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.1], help="data.label_fraction values")
    parser.add_argument("--steps", type=int, default=1000, help="fine-tuning steps per run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--num-images", type=int, default=2000, help="training images when writing shards")
    parser.add_argument("--pretrain-steps", type=int, default=1000, help="when pre-training a model here")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and 2 steps each (a test of the tool)")
    parser.add_argument("--list", action="store_true", help="print the strategies and exit")
    return parser


def prepare(args: argparse.Namespace, out: Path) -> tuple[str, str]:
    """(shard directory, pre-trained model directory): given, or made here."""
    data = args.data or str(out / "shards")
    if not args.data and not (Path(data) / "manifest.json").is_file():
        small = args.num_images // 10
        assert vlbert_main(["make-shards", "sort-of-clevr", "--num-images", str(args.num_images), "--num-val",
                            str(small), "--num-test", str(small), "--region-features", "--out", data]) == 0
    if args.pretrained:
        return data, args.pretrained
    pre = out / "pretrain"
    if not (pre / "model" / "config.json").is_file():
        model = [] if args.smoke else SMALL_MODEL
        assert vlbert_main(["pretrain", f"data.root={data}", f"out_dir={pre}", f"train.max_steps={args.pretrain_steps}",
                            f"data.batch_size={args.batch_size}", "data.max_length=96", "train.progress=false",
                            *model]) == 0  # fmt: skip
    return data, str(pre / "model")


def saved_megabytes(run_dir: Path) -> float:
    adapter = run_dir / "adapter" / "adapter_model.safetensors"
    weights = adapter if adapter.is_file() else run_dir / "model" / "model.safetensors"
    return weights.stat().st_size / 2**20


def run_one(args: argparse.Namespace, data: str, pretrained: str, strategy: str, fraction: float, out: Path) -> Row:
    run_dir = out / f"{strategy}-{fraction:g}"
    values = {"unfreeze_every": max(1, args.steps // 10), "teacher": out / "full-1" / "model"}
    extra = [item.format(**values) for item in STRATEGIES[strategy]]
    overrides = [f"data.root={data}", f"model.init={pretrained}", f"out_dir={run_dir}", f"train.max_steps={args.steps}",
                 f"data.batch_size={args.batch_size}", f"data.label_fraction={fraction}", f"train.optim.lr={args.lr}",
                 "data.max_length=96", "data.val_split=null", "train.progress=false", *extra]  # fmt: skip
    cfg = load_run_config(None, overrides, task="vqa")
    start = time.perf_counter()
    result = run_training(cfg, resume=False)
    seconds = (time.perf_counter() - start) / max(1, result.steps)
    adapter = run_dir / "adapter"
    model_dir, with_adapter = (pretrained, adapter) if adapter.is_dir() else (result.model_dir, None)
    test = evaluate_model_dir(cfg, model_dir, data, "test", with_adapter)
    return Row(strategy, fraction, test.metrics["vqa_acc"], result.trainable_params, seconds, saved_megabytes(run_dir))


def markdown(rows: list[Row]) -> str:
    lines = ["| strategy | labels | VQA accuracy | trainable params | s / step | saved MB |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.strategy} | {r.label_fraction:.0%} | {r.accuracy:.3f} | {r.trainable_params:,} | "
                     f"{r.step_seconds:.3f} | {r.saved_mb:.2f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for name, note in NOTES.items():
            print(f"{name:12s} {note}")
        return 0
    if args.smoke:
        args.steps, args.pretrain_steps, args.num_images, args.batch_size = 2, 2, 48, 8
    names = args.strategies.split(",")
    unknown = [name for name in names if name not in STRATEGIES]
    if unknown:
        print(f"unknown strategy {unknown[0]!r} (known: {', '.join(STRATEGIES)})", file=sys.stderr)
        return 2
    if "distill" in names:  # its teacher is the full model on all labels: train that first
        names = ["full", *[n for n in names if n != "full"]]
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data, pretrained = prepare(args, out)
    rows = []
    for name in names:
        for fraction in args.fractions:
            if name == "distill" and not (out / "full-1" / "model").is_dir():
                run_one(args, data, pretrained, "full", 1.0, out)
            rows.append(run_one(args, data, pretrained, name, fraction, out))
            with open(out / "results.jsonl", "a") as handle:
                handle.write(json.dumps(rows[-1]._asdict()) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
