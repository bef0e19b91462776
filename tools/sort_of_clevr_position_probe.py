"""Can the quickstart's model learn to read an object's position? A diagnostic for its VQA.

Trains the quickstart's small ViLBERT from scratch on the position questions (left/right,
top/bottom) of a Sort-of-CLEVR shard directory written with --region-features, in two settings:
all six regions visible, and only the region the question asks about (found by its colour). The
difference says whether the position reaches the model at all, or whether picking the region out
of six is what takes the steps. Prints held-out accuracy on the position questions as it goes.

    vlbert make-shards sort-of-clevr --num-images 2000 --num-test 200 --region-features --out data/soc
    python tools/sort_of_clevr_position_probe.py --data data/soc --steps 300
    python tools/sort_of_clevr_position_probe.py --data data/soc --steps 300 --location-init-std 0.3
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from vlbert.data.pipeline.batch import Batch
from vlbert.data.pipeline.loader import make_dataset, make_loader
from vlbert.data.sources.sort_of_clevr.scenes import COLORS
from vlbert.eval.saved import RunParts
from vlbert.quickstart.plan import SMALL_MODEL
from vlbert.run.setup import build_parts
from vlbert.runconfig import RunConfig, load_run_config
from vlbert.rundata import collate_config, data_config

POSITION = ("horizontal", "vertical")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="Sort-of-CLEVR shards with --region-features, train and test splits")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=100, help="evaluate every this many steps")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--test-batches", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--location-init-std", type=float, default=None,
                        help="re-initialise the 5-d box embedding with this std (default: the model's 0.02)")
    return parser


def run_config(data: str, work: str) -> RunConfig:
    overrides = [f"model.overrides.{key}={value}" for key, value in SMALL_MODEL.items()]
    return load_run_config(None, ["task=vqa", "model.name=tiny", f"data.root={data}", "data.vocab_size=200",
                                  "data.num_answers=12", "data.max_length=24", f"out_dir={work}", *overrides])


def batches(cfg: RunConfig, parts: RunParts, split: str, train: bool, size: int) -> torch.utils.data.DataLoader:
    dataset = make_dataset(cfg.data.root, "questions", parts.tokenizer, data_config(cfg, parts.model, split, train), parts.answers)
    return make_loader(dataset, parts.tokenizer, size, collate_config(cfg, parts.model, train), report=None)


def endless(loader: torch.utils.data.DataLoader) -> Iterator[Batch]:
    """The loader's batches, epoch after epoch (itertools.cycle would keep every batch in memory)."""
    while True:
        yield from loader


def position_rows(batch: Batch) -> torch.Tensor:
    """[B] bool: the rows asking left/right or top/bottom."""
    return torch.tensor([subtype in POSITION for subtype in batch.question_subtypes])


def asked_region_only(batch: Batch) -> Batch:
    """The batch with every region but the one each question names (by colour) masked out."""
    crops = batch.region_features.float().view(*batch.region_features.shape[:2], 11, 11, 3)  # [B, N, 11, 11, 3]
    centres = crops[:, :, 5, 5] * 255  # [B, N, 3] the centre pixel is the object's colour
    keep = torch.zeros_like(batch.region_mask)
    for row, text in enumerate(batch.texts):
        color = next(name for name in COLORS if f" {name} " in f" {text} ")
        distance = (centres[row] - torch.tensor(COLORS[color], dtype=torch.float)).abs().sum(-1)  # [N]
        distance = distance.masked_fill(~batch.region_mask[row], float("inf"))
        keep[row, distance.argmin()] = True
    batch.region_mask = keep
    return batch


@torch.no_grad()
def accuracy(model: torch.nn.Module, test: list[Batch], answers: list[str]) -> float:
    model.eval()
    hits = []
    for batch in test:
        predicted = model(**batch.model_inputs()).logits.argmax(-1).tolist()  # [B]
        hits += [answers[p] == truth[0] for p, truth, keep in zip(predicted, batch.answers, position_rows(batch)) if keep]
    model.train()
    return sum(hits) / max(len(hits), 1)


def probe(args: argparse.Namespace, only_asked: bool, work: str) -> list[tuple[int, float]]:
    torch.manual_seed(args.seed)
    cfg = run_config(args.data, work)
    parts = build_parts(cfg, Path(work))
    model = parts.model.train()
    if args.location_init_std is not None:
        torch.nn.init.normal_(model.vlbert.v_embeddings.image_location_embeddings.weight, std=args.location_init_std)
    prepare = asked_region_only if only_asked else (lambda batch: batch)
    test = [prepare(b) for b in itertools.islice(batches(cfg, parts, "test", False, 128), args.test_batches)]
    optimizer = torch.optim.AdamW(model.parameters(), args.lr, weight_decay=0.01)
    curve, began = [], time.perf_counter()
    for step, batch in enumerate(itertools.islice(endless(batches(cfg, parts, "train", True, args.batch_size)), args.steps), 1):
        batch, rows = prepare(batch), position_rows(batch)
        logits = model(**batch.model_inputs()).logits  # [B, A]
        per_row = F.binary_cross_entropy_with_logits(logits, batch.answer_scores, reduction="none").sum(-1)  # [B]
        loss = (per_row * rows).sum() / rows.sum().clamp(min=1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if step % args.every == 0 or step == args.steps:
            curve.append((step, accuracy(model, test, parts.answers.answers)))
            setting = "asked region only" if only_asked else "all regions"
            print(f"{setting:>17}  step {step:5d}  position accuracy {curve[-1][1]:.3f}  {time.perf_counter() - began:.0f} s", flush=True)
    return curve


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        results = {name: probe(args, only, work) for name, only in (("all", False), ("asked-only", True))}
    print(f"after {args.steps} steps: all regions {results['all'][-1][1]:.3f}, asked region only {results['asked-only'][-1][1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
