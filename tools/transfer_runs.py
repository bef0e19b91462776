"""Does pre-training transfer? VQA (and retrieval) fine-tuned from a pre-trained model and from
scratch (its vocabulary only), the same steps and settings, with the quickstart's stage configs,
at chosen fractions of the labels and seeds. Each run's validation (or test) figures go to a
JSONL file, one line per run, and a table is printed.

    python tools/transfer_runs.py --pretrained runs/quickstart/pretrain/model --data runs/quickstart/data \\
        --fractions 1.0 0.1 0.01 --steps 400 --seeds 0 1 --out runs/transfer.jsonl
    python tools/transfer_runs.py --table runs/transfer.jsonl
    python tools/transfer_runs.py --curves runs/transfer.jsonl   # validation accuracy per subtype, per eval

Extra `key=value` overrides (after --set) apply to every run, e.g. `--set train.optim.lr=2e-4`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from vlbert.eval.split import evaluate_parts
from vlbert.quickstart.pipeline import Quickstart
from vlbert.quickstart.plan import QuickstartPlan
from vlbert.run.training import run_training


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", help="the pre-trained model directory (with its tokenizer)")
    parser.add_argument("--data", help="the quickstart's shards (vlbert make-shards sort-of-clevr ... --region-features)")
    parser.add_argument("--task", choices=("vqa", "retrieval"), default="vqa")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1], help="fractions of the VQA labels")
    parser.add_argument("--starts", nargs="+", choices=("pretrained", "scratch"), default=["pretrained", "scratch"])
    parser.add_argument("--steps", type=int, default=400, help="training steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--split", default="val", help="split the final figures are measured on (default val)")
    parser.add_argument("--work", default="runs/transfer", help="where the runs' directories go")
    parser.add_argument("--name", default="", help="a label for these runs in the JSONL file")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every run")
    parser.add_argument("--out", help="JSONL file to append one line per run to")
    parser.add_argument("--table", help="print the table of a JSONL file and stop")
    parser.add_argument("--curves", help="print each run's validation curve per question subtype and stop")
    return parser


def run_one(args: argparse.Namespace, fraction: float, start: str, seed: int) -> dict[str, object]:
    plan = QuickstartPlan(seed=seed)
    qs = Quickstart(args.work, plan, ablation=False, progress=False)
    qs.data = Path(args.data)
    how = f"model.init={args.pretrained}" if start == "pretrained" else f"data.tokenizer={args.pretrained}"
    name = f"{args.name or 'run'}-{args.task}-{fraction:g}-{start}-s{seed}"
    if args.task == "vqa":
        cfg = qs.config("vqa", name, args.steps, how, f"data.label_fraction={fraction}", *args.set)
    else:
        cfg = qs.retrieval_config(args.steps, how, *args.set, name=name)
    began = time.perf_counter()
    result = run_training(cfg, resume=False)
    metrics = evaluate_parts(cfg, result.parts, args.split)
    return {"name": args.name, "task": args.task, "fraction": fraction, "start": start, "seed": seed,
            "steps": args.steps, "split": args.split, "set": args.set, "seconds": round(time.perf_counter() - began, 1),
            "metrics": metrics, "history": [row for row in result.history if any(k.startswith("eval_") for k in row)]}


def table(rows: list[dict[str, object]]) -> str:
    """Mean figure per (name, task, fraction, start) over seeds, with the seeds' values."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        metric = "vqa_acc" if row["task"] == "vqa" else "t2i_r1"
        groups[(row["name"], row["task"], row["fraction"], row["start"], row["steps"])].append(row["metrics"][metric])
    lines = ["name | task | fraction | start | steps | mean | per seed"]
    for (name, task, fraction, start, steps), values in sorted(groups.items()):
        per = ", ".join(f"{v:.3f}" for v in values)
        lines.append(f"{name} | {task} | {fraction:g} | {start} | {steps} | {sum(values) / len(values):.3f} | {per}")
    return "\n".join(lines)


def curves(rows: list[dict[str, object]]) -> str:
    """Each VQA run's validation points: step, accuracy, and accuracy per question subtype."""
    lines = []
    for row in rows:
        if row["task"] != "vqa":
            continue
        lines.append(f"{row['name']} {row['fraction']:g} {row['start']} seed {row['seed']} {' '.join(row['set'])}")
        for point in row["history"]:
            subtypes = " ".join(f"{k.removeprefix('eval_vqa_acc_subtype_')} {v:.3f}" for k, v in sorted(point.items())
                                if k.startswith("eval_vqa_acc_subtype_"))
            lines.append(f"  step {point['step']:>5}  acc {point['eval_vqa_acc']:.3f}  {subtypes}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.curves:
        print(curves([json.loads(line) for line in Path(args.curves).read_text().splitlines() if line.strip()]))
        return 0
    if args.table:
        print(table([json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]))
        return 0
    if not (args.pretrained and args.data):
        raise SystemExit("--pretrained and --data are required (or --table FILE)")
    rows = []
    for seed in args.seeds:
        for fraction in args.fractions if args.task == "vqa" else [1.0]:
            for start in args.starts:
                row = run_one(args, fraction, start, seed)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "history"}), flush=True)
                if args.out:
                    with open(args.out, "a") as out:
                        out.write(json.dumps(row) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
