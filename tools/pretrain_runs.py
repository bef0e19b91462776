"""Does pre-training read the boxes, and by which step? The quickstart's pre-training stage on a
seed's built-in data, with plan fields or config keys changed, a checkpoint every `--check-every`
steps, and the mirror check (`vlbert.eval.mirror`: the ITM head's true description against the
one mirrored left <-> right, and top <-> bottom) on each. One JSONL line per run.

    python tools/pretrain_runs.py --seed 2 --name base --out runs/pretrain_runs.jsonl
    python tools/pretrain_runs.py --seed 2 --name long --plan pretrain_steps=600 --check-every 150
    python tools/pretrain_runs.py --seed 2 --name lr1e-3 --set train.optim.lr=1e-3
    python tools/pretrain_runs.py --table runs/pretrain_runs.jsonl

`--plan` sets `QuickstartPlan` fields (ints, floats, strings); `--set` adds run-config overrides.
Data is generated once per seed under `--work` (the quickstart's splits, sizes from the plan).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path

from safetensors.torch import load_file

from vlbert.eval.mirror import mirror_checks
from vlbert.eval.split import eval_batches
from vlbert.quickstart.pipeline import Quickstart, stage_overrides
from vlbert.quickstart.plan import QuickstartPlan
from vlbert.run.training import run_training


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="run", help="a label for the run in the JSONL file")
    parser.add_argument("--plan", nargs="*", default=[], metavar="FIELD=VALUE", help="QuickstartPlan fields")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="run-config overrides")
    parser.add_argument("--check-every", type=int, default=100, help="steps between mirror checks")
    parser.add_argument("--split", default="val", help="split the mirror check reads (default val)")
    parser.add_argument("--limit", type=int, default=200, help="images checked at most")
    parser.add_argument("--work", default="runs/pretrain_runs", help="data and run directories")
    parser.add_argument("--out", help="JSONL file to append the run's line to")
    parser.add_argument("--table", help="print the runs of a JSONL file and stop")
    return parser


def _cast(current: object, value: str) -> object:
    """`value` as the type of the field's `current` value; a tuple from a comma-separated list."""
    if isinstance(current, bool):
        return value.lower() == "true"
    if isinstance(current, tuple):  # "closest,furthest" -> ("closest", "furthest")
        kind = type(current[0]) if current else str
        return tuple(kind(x) for x in value.split(",") if x)
    return type(current)(value)


def plan_from(seed: int, assignments: list[str], base: str = "default") -> QuickstartPlan:
    """The `base` plan ("default", "long", "smoke") with `FIELD=VALUE` assignments, each value cast
    to the field's type."""
    plans = {"default": QuickstartPlan, "long": QuickstartPlan.long, "smoke": QuickstartPlan.smoke}
    plan, types = replace(plans[base](), seed=seed), {f.name: f for f in fields(QuickstartPlan)}
    for item in assignments:
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"--plan: QuickstartPlan has no field {key!r}")
        current = getattr(plan, key)
        plan = replace(plan, **{key: _cast(current, value)})
    return plan


def run(args: argparse.Namespace) -> dict[str, object]:
    plan = plan_from(args.seed, args.plan)
    work = Path(args.work)
    qs = Quickstart(work / f"{args.name}-s{args.seed}", plan, ablation=False, progress=False)
    qs.data = work / f"data-s{args.seed}"
    qs.make_data()
    cfg = qs.config("pretraining", "pretrain", plan.pretrain_steps, *stage_overrides(plan)["pretrain"],
                    f"train.save_every={args.check_every}", "train.keep_checkpoints=1000", *args.set)
    began = time.perf_counter()
    result = run_training(cfg, resume=False)
    seconds = time.perf_counter() - began
    model = result.parts.model.eval()
    batches = list(eval_batches(qs.retrieval_config(1), result.parts, args.split))
    curve = []
    for checkpoint in sorted((Path(cfg.out_dir) / "checkpoints").glob("step-*"), key=lambda p: int(p.name[5:])):
        missing, _ = model.load_state_dict(load_file(str(checkpoint / "model.safetensors")), strict=False)
        if any(not key.startswith("mlm_head.decoder.") for key in missing):  # the decoder is tied to the embeddings
            raise SystemExit(f"{checkpoint}: weights missing from the checkpoint: {missing}")
        checks = mirror_checks(model, batches, result.parts.tokenizer, plan.pretrain_max_length, args.limit)
        point = {"step": int(checkpoint.name[5:]), "horizontal": checks["horizontal"].preferred,
                 "vertical": checks["vertical"].preferred}
        print(json.dumps(point), flush=True)
        curve.append(point)
    return {"name": args.name, "seed": args.seed, "plan": args.plan, "set": args.set, "split": args.split,
            "seconds": round(seconds, 1), "curve": curve,
            "history": [row for row in result.history if "loss" in row][-1:]}


def table(rows: list[dict[str, object]]) -> str:
    lines = ["name | seed | train s | mirror check (left/right, top/bottom) per step"]
    for row in rows:
        points = ", ".join(f"{p['step']}: {p['horizontal']:.2f}/{p['vertical']:.2f}" for p in row["curve"])
        lines.append(f"{row['name']} | {row['seed']} | {row['seconds']:.0f} | {points}")
    return "\n".join(lines)


def run_or_table(args: argparse.Namespace, run: Callable[[argparse.Namespace], dict[str, object]],
                 table: Callable[[list[dict[str, object]]], str]) -> int:
    """`--table FILE`: print that JSONL file's table; else run once, append the line to `--out`
    (if given) and print the run's table."""
    if args.table:
        print(table([json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]))
        return 0
    row = run(args)
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
    print(table([row]))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_or_table(build_parser().parse_args(argv), run, table)


if __name__ == "__main__":
    raise SystemExit(main())
