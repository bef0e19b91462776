"""``vlbert predict``: answer a question about an image, rank a folder of images for a text, or
caption an image, with a saved model directory."""

from __future__ import annotations

import argparse

from vlbert.data.sources.detectors import DETECTORS

HELP = "run a saved model on your own images (VQA answer, image ranking, caption)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a model directory (a run's model/ or best/)")
    parser.add_argument("--adapter", help="an adapter directory (a LoRA run's adapter/) to apply to --model")
    parser.add_argument("--image", help="an image file (VQA, captioning)")
    parser.add_argument("--question", help="a question about --image (VQA model)")
    parser.add_argument("--caption", action="store_true", help="caption --image (captioning model)")
    parser.add_argument("--images", help="a folder of images to rank for --query (retrieval model)")
    parser.add_argument("--query", help="the text to rank --images for")
    parser.add_argument("--features", help="region features .npz for --image (region models)")
    parser.add_argument("--detector", choices=sorted(DETECTORS),
                        help="find the regions of --image/--images with this detector (region models "
                             "without --features; sort-of-clevr: the built-in scenes' colour detector)")
    parser.add_argument("--top", type=int, default=5, help="how many answers (VQA) or images (ranking) to print (default 5)")


def run(args: argparse.Namespace) -> int:
    from vlbert.run.predict import Predictor

    predictor = Predictor(args.model, adapter=args.adapter)
    if args.question is not None:
        _need(args.image, "--question needs --image")
        for answer, prob in predictor.answer(args.image, args.question, args.top, args.features, args.detector):
            print(f"{prob:.3f}  {answer}")
    elif args.caption:
        _need(args.image, "--caption needs --image")
        print(predictor.caption(args.image, features=args.features, detector=args.detector))
    elif args.query is not None:
        _need(args.images, "--query needs --images (a folder)")
        for item in predictor.rank(args.images, args.query, args.top, detector=args.detector):
            print(f"{item.score:+.3f}  {item.path}")
    else:
        raise ValueError("say what to predict: --question, --caption or --query")
    return 0


def _need(value: str | None, message: str) -> None:
    if not value:
        raise ValueError(message)
