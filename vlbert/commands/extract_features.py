"""``vlbert extract-features --images DIR --out DIR --detector torchvision:NAME --weights FILE``."""

from __future__ import annotations

import argparse

from vlbert.data.sources.extraction.detector import load_detector
from vlbert.data.sources.extraction.folder import extract_folder
from vlbert.data.sources.extraction.regions import FEATURE_KINDS, BoxSelection, RegionExtractor

HELP = "region features (boxes, box features, class distributions) of a folder of images, from a torchvision detector"


def add_box_arguments(parser: argparse.ArgumentParser, defaults: BoxSelection) -> None:
    """--max-boxes, --min-boxes and --score-threshold, with `defaults`' values (a `BoxSelection`)."""
    parser.add_argument("--max-boxes", type=int, default=defaults.max_boxes,
                        help=f"at most this many regions per image (default {defaults.max_boxes})")
    parser.add_argument("--min-boxes", type=int, default=defaults.min_boxes,
                        help=f"at least this many regions, if the detector found them (default {defaults.min_boxes})")
    parser.add_argument("--score-threshold", type=float, default=defaults.score_threshold,
                        help=f"between the two, keep the boxes scoring at least this (default {defaults.score_threshold})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder: one {image_id}.npz per image, and errors.tsv")
    parser.add_argument("--detector", required=True, metavar="torchvision:NAME",
                        help="a torchvision detection model, e.g. torchvision:fasterrcnn_resnet50_fpn")
    parser.add_argument("--weights", required=True,
                        help="its weights: a local state dict, or a file saved by tools/train_detector.py")
    parser.add_argument("--num-classes", type=int,
                        help="classes of the weights, background included (default: from the file, else 91)")
    add_box_arguments(parser, BoxSelection())
    parser.add_argument("--nms-iou", type=float, default=0.5,
                        help="class-agnostic NMS: drop a box overlapping a better one by this IoU (default 0.5)")
    parser.add_argument("--feature", choices=FEATURE_KINDS, default="box-head",
                        help="box-head: the R-CNN box head's vector per box; roi-pool: the RoIAligned backbone "
                             "map, averaged (any model)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per detector batch (default 8)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    model, _ = load_detector(args.detector, args.weights, args.num_classes)
    selection = BoxSelection(args.max_boxes, args.min_boxes, args.score_threshold, args.nms_iou)
    extractor = RegionExtractor(model, selection, args.feature, args.device)
    summary = extract_folder(args.images, args.out, extractor, args.batch_size, progress=not args.no_progress)
    print(summary.format())
    return 0
