"""``vlbert predict``: answer a question about an image, rank a folder of images for a text, or
caption an image, with a saved model directory."""

from __future__ import annotations

import argparse

HELP = "run a saved model on your own images (VQA answer, image ranking, caption)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a model directory (a run's model/ or best/)")
    parser.add_argument("--image", help="an image file (VQA, captioning)")
    parser.add_argument("--question", help="a question about --image (VQA model)")
    parser.add_argument("--caption", action="store_true", help="caption --image (captioning model)")
    parser.add_argument("--images", help="a folder of images to rank for --query (retrieval model)")
    parser.add_argument("--query", help="the text to rank --images for")
    parser.add_argument("--features", help="region features .npz for --image (region models)")
    parser.add_argument("--detector", help="region models without --features: a built-in detector "
                                           "(sort-of-clevr: Sort-of-CLEVR-style images only)")
    parser.add_argument("--top", type=int, default=5)


def run(args: argparse.Namespace) -> int:
    from vlbert.run.predict import Predictor

    predictor = Predictor(args.model, detector=args.detector)
    if args.question is not None:
        _need(args.image, "--question needs --image")
        for answer, prob in predictor.answer(args.image, args.question, args.top, args.features):
            print(f"{prob:.3f}  {answer}")
    elif args.caption:
        _need(args.image, "--caption needs --image")
        print(predictor.caption(args.image, features=args.features))
    elif args.query is not None:
        _need(args.images, "--query needs --images (a folder)")
        for item in predictor.rank(args.images, args.query, args.top):
            print(f"{item.score:+.3f}  {item.path}")
    else:
        raise ValueError("say what to predict: --question, --caption or --query")
    return 0


def _need(value: str | None, message: str) -> None:
    if not value:
        raise ValueError(message)
