"""Train a small Faster R-CNN on the built-in Sort-of-CLEVR scenes, on the CPU, from no weights at all.

The scenes' ground-truth boxes (one per object, 12 colour-shape classes) are the targets, drawn
fresh every step (the generator has no end), so there is no dataset to fit. The model is
torchvision's `fasterrcnn_mobilenet_v3_large_fpn` with random weights (no download), the 75 x 75
scenes resized to `--image-size`. At the end: box recall at IoU 0.5 on the held-out test scenes,
over the regions `vlbert extract-features` would keep with the same selection options, and the
weights file (with its constructor arguments) that `vlbert extract-features --weights` reads.

    python tools/train_detector.py --out runs/detector/detector.pt
    vlbert extract-features --images my_scenes/ --out feats/ --weights runs/detector/detector.pt \\
        --detector torchvision:fasterrcnn_mobilenet_v3_large_fpn --max-boxes 10 --min-boxes 1 --score-threshold 0.5
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torchvision
from torchvision.ops import box_iou
from torchvision.transforms.functional import pil_to_tensor

from vlbert.commands.extract_features import add_box_arguments
from vlbert.data.sources.extraction.detector import SAVED_FORMAT
from vlbert.data.sources.extraction.regions import BoxSelection, RegionExtractor
from vlbert.data.sources.sort_of_clevr.regions import CLASSES
from vlbert.data.sources.sort_of_clevr.scenes import image_rng, render_scene, sample_scene

NAME = "fasterrcnn_mobilenet_v3_large_fpn"


def model_kwargs(image_size: int) -> dict[str, Any]:
    """Sized for 75 x 75 scenes with six objects: few proposals, a small box-head batch."""
    return dict(num_classes=len(CLASSES) + 1, min_size=image_size, max_size=image_size,
                rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=50, rpn_pre_nms_top_n_test=100,
                rpn_post_nms_top_n_test=20, rpn_batch_size_per_image=64, box_batch_size_per_image=32,
                box_positive_fraction=0.5, box_detections_per_img=20)  # fmt: skip


def scene_example(seed: int, split: str, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Image [3, 75, 75] in [0, 1] and its targets: boxes [6, 4] (pixels), labels [6] (1..12)."""
    scene = sample_scene(image_rng(seed, split, index))
    image = pil_to_tensor(render_scene(scene)).float() / 255
    boxes = torch.tensor([obj.box for obj in scene.objects], dtype=torch.float32)
    labels = torch.tensor([CLASSES.index(obj.label) + 1 for obj in scene.objects])
    return image, {"boxes": boxes, "labels": labels}


def box_recall(model: torch.nn.Module, selection: BoxSelection, seed: int, count: int) -> dict[str, float]:
    """Share of the test scenes' objects that a kept region overlaps at IoU >= 0.5, and the share
    of kept regions that are such a match (precision)."""
    extractor = RegionExtractor(model, selection)
    found = kept = matched = 0
    for start in range(0, count, 32):
        examples = [scene_example(seed, "test", i) for i in range(start, min(start + 32, count))]
        images = [torchvision.transforms.functional.to_pil_image(image) for image, _ in examples]
        for regions, (_, target) in zip(extractor(images), examples):
            iou = box_iou(target["boxes"], torch.from_numpy(regions.boxes))  # [6, N]
            found += int((iou.max(1).values >= 0.5).sum())
            matched += int((iou.max(0).values >= 0.5).sum())
            kept += iou.shape[1]
    objects = 6 * count
    return {"recall_iou50": found / objects, "precision_iou50": matched / max(kept, 1), "regions_per_image": kept / count}


def train(args: argparse.Namespace) -> torch.nn.Module:
    torch.manual_seed(args.seed)
    model = torchvision.models.get_model(NAME, weights=None, weights_backbone=None, **model_kwargs(args.image_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warmup = min(100, args.steps // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(s, args.steps) / args.steps)))  # fmt: skip
    model.train()
    began = time.perf_counter()
    for step in range(args.steps):
        batch = [scene_example(args.seed, "detector-train", step * args.batch_size + j) for j in range(args.batch_size)]
        losses = model([image for image, _ in batch], [target for _, target in batch])
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        schedule.step()
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            parts = " ".join(f"{k.removeprefix('loss_')} {v.item():.3f}" for k, v in losses.items())
            print(f"step {step + 1}/{args.steps} loss {loss.item():.3f} ({parts}) {time.perf_counter() - began:.0f} s",
                  flush=True)  # fmt: skip
    return model.eval()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/detector/detector.pt", help="weights file to write")
    parser.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    parser.add_argument("--batch-size", type=int, default=8, help="scenes per step (default 8)")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate (default 1e-3)")
    parser.add_argument("--image-size", type=int, default=192, help="the scenes are resized to this (default 192)")
    parser.add_argument("--test-images", type=int, default=500, help="held-out test scenes for recall (default 500)")
    add_box_arguments(parser, BoxSelection(max_boxes=10, min_boxes=1, score_threshold=0.5))  # six objects a scene
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and of the scenes (default 0)")
    parser.add_argument("--log-every", type=int, default=50, help="print the losses every N steps (default 50)")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    model = train(args)
    selection = BoxSelection(args.max_boxes, args.min_boxes, args.score_threshold)
    report = {"steps": args.steps, "batch_size": args.batch_size, "image_size": args.image_size,
              "test_images": args.test_images, **box_recall(model, selection, args.seed, args.test_images)}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": SAVED_FORMAT, "name": NAME, "kwargs": model_kwargs(args.image_size),
                "classes": ["background", *CLASSES], "state_dict": model.state_dict()}, out)  # fmt: skip
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
