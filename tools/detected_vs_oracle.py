"""The whole path on built-in data: a trained detector's regions in place of the oracle's.

1. The quickstart's Sort-of-CLEVR scenes as a folder of PNG files with a JSON Lines file per split
   (the layout of docs/own-data.md), and the same scenes as oracle-region shards.
2. `vlbert extract-features` with the detector `tools/train_detector.py` trained (speed measured).
3. `vlbert make-shards folder --features` on the detected regions.
4. The quickstart's VQA stage (its plan, model and steps, from its vocabulary-only start) on
   detected and on oracle regions, each measured on the held-out test scenes.

Prints one JSON object: box recall at IoU 0.5 of the extracted test regions, extraction speed,
and VQA accuracy on detected beside oracle regions.

    python tools/train_detector.py --out runs/detector/detector.pt
    python tools/detected_vs_oracle.py --weights runs/detector/detector.pt --out runs/detected
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou

from vlbert.commands.extract_features import add_box_arguments
from vlbert.data.shards.schema import RegionFeatures
from vlbert.data.sources.converters import WriteOptions, convert_folder
from vlbert.data.sources.extraction.detector import load_detector
from vlbert.data.sources.extraction.folder import extract_folder
from vlbert.data.sources.extraction.regions import BoxSelection, RegionExtractor
from vlbert.data.sources.sort_of_clevr.shards import make_sample, make_sort_of_clevr_shards
from vlbert.quickstart.pipeline import Quickstart
from vlbert.quickstart.plan import QuickstartPlan

DETECTOR = "torchvision:fasterrcnn_mobilenet_v3_large_fpn"


def write_scene_folder(root: Path, splits: dict[str, int], seed: int) -> None:
    """``root/images/{split}/{index}.png`` and ``root/{split}.jsonl`` with each image's captions and
    questions (type and subtype kept, for the VQA stage's curriculum and per-type accuracy)."""
    for split, count in splits.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        with (root / f"{split}.jsonl").open("w") as rows:
            for index in range(count):
                sample = make_sample(index, seed, split)
                name = f"{split}/{index:06d}.png"
                (root / "images" / name).write_bytes(sample.image)
                questions = [{"id": q.question_id, "question": q.question, "answers": q.answers, "type": q.type,
                              "subtype": q.subtype} for q in sample.record.questions]  # fmt: skip
                rows.write(json.dumps({"image": name, "captions": sample.record.captions, "questions": questions}) + "\n")


def test_recall(features: Path, count: int, seed: int) -> float:
    """Share of the test scenes' objects overlapped at IoU >= 0.5 by an extracted region."""
    found = 0
    for index in range(count):
        with np.load(features / "test" / f"{index:06d}.npz") as npz:
            boxes = torch.from_numpy(RegionFeatures.from_arrays(npz).boxes)
        truth = torch.tensor(make_sample(index, seed, "test").record.boxes, dtype=torch.float32)
        found += int((box_iou(truth, boxes).max(1).values >= 0.5).sum())
    return found / (6 * count)


def vqa_on(shards: Path, out: Path, plan: QuickstartPlan, feature_size: int, classes: int) -> dict[str, float]:
    """The quickstart's VQA stage (both phases) on ``shards``; its test-split metrics."""
    plan = replace(plan, model={**plan.model, "v_feature_size": feature_size, "v_target_size": classes})
    stage = Quickstart(out, plan, ablation=False, progress=False)
    stage.data = shards
    _, metrics = stage.vqa_phases("vqa", plan.vqa_steps, plan.vqa_first_steps, plan.vqa_first_subtypes,
                                  f"data.vocab_size={plan.vocab_size}")  # fmt: skip
    return {k: v for k, v in metrics.items() if k.startswith("vqa_acc")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="the detector tools/train_detector.py saved")
    parser.add_argument("--out", default="runs/detected", help="working folder (scenes, features, shards, runs)")
    parser.add_argument("--plan", choices=("default", "smoke"), default="default", help="the quickstart's plan")
    add_box_arguments(parser, BoxSelection(max_boxes=10, min_boxes=1, score_threshold=0.5))  # six objects a scene
    parser.add_argument("--batch-size", type=int, default=16, help="images per detector batch (default 16)")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    plan = QuickstartPlan.smoke() if args.plan == "smoke" else QuickstartPlan()
    out, seed = Path(args.out), plan.seed
    splits = {"train": plan.train_images, "val": plan.val_images, "test": plan.test_images}
    write_scene_folder(out / "scenes", splits, seed)
    make_sort_of_clevr_shards(out / "oracle", splits, seed=seed, regions=True, overwrite=True)
    model, saved = load_detector(DETECTOR, args.weights)
    extractor = RegionExtractor(model, BoxSelection(args.max_boxes, args.min_boxes, args.score_threshold))
    extraction = extract_folder(out / "scenes" / "images", out / "features", extractor, args.batch_size, progress=False)
    for index, split in enumerate(splits):
        options = WriteOptions(features_dir=out / "features", append=index > 0, overwrite=index == 0)
        convert_folder(out / "scenes" / "images", out / "detected", out / "scenes" / f"{split}.jsonl", split, options)
    with np.load(out / "features" / "test" / "000000.npz") as npz:
        feature_size, classes = npz["features"].shape[1], npz["class_probs"].shape[1]
    oracle = vqa_on(out / "oracle", out / "runs-oracle", plan, 363, 12)
    detected = vqa_on(out / "detected", out / "runs-detected", plan, feature_size, classes)
    report = {"plan": args.plan, "test_images": plan.test_images, "recall_iou50": test_recall(out / "features",
              plan.test_images, seed), "extraction_images_per_second": extraction.images_per_second,
              "extraction_threads": torch.get_num_threads(), "vqa_oracle": oracle, "vqa_detected": detected,
              "vqa_gap": oracle["vqa_acc"] - detected["vqa_acc"]}  # fmt: skip
    print(json.dumps(report, indent=1))
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
