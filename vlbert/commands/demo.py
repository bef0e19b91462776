"""``vlbert demo``: a local web page to try saved models: ask about an uploaded or a built-in
image and see which regions the answer rests on, caption it, search a gallery by caption."""

from __future__ import annotations

import argparse

from vlbert.data.sources.detectors import DETECTORS
from vlbert.run.map_methods import MAP_METHODS

HELP = "serve a web page to try saved models (VQA with answer maps, captioning, retrieval)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, action="append",
                        help="a model directory; repeat to load several (say a VQA, a retrieval and a caption model)")
    parser.add_argument("--gallery", help="images to search by caption: a shard directory or an image folder")
    parser.add_argument("--gallery-split", help="the split of a shard gallery to read (default: every shard)")
    parser.add_argument("--gallery-limit", type=int, default=500, help="read at most this many gallery images")
    parser.add_argument("--detector", choices=sorted(DETECTORS),
                        help="find the regions of gallery folder images with this detector (region models)")
    parser.add_argument("--search", choices=("two-stage", "itc"), default="two-stage",
                        help="gallery ranking: ITC top-k re-ranked by ITM (default), or ITC alone (a model trained "
                             "without ITM, such as the quickstart's retrieval model)")
    parser.add_argument("--map", choices=tuple(MAP_METHODS), default=None,
                        help="how the answer's map is made: removal (each region left out of the scene in turn; the "
                             "default for a model that reads regions), occlusion (each region's features zeroed in "
                             "turn; the default for one that reads pixels), or attention (the co-attention "
                             "probabilities from the question to the regions)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")


def run(args: argparse.Namespace) -> int:
    try:
        from vlbert.demo.app import serve_demo
    except ImportError as error:
        raise ValueError(f"the demo needs its extra: pip install 'vlbert[demo]' ({error.name} is missing)") from None
    from vlbert.demo.service import DemoService

    service = DemoService(args.model, args.gallery, args.gallery_limit, args.detector,
                          gallery_split=args.gallery_split, search_mode=args.search, map_method=args.map)
    info = service.info()
    print(f"vlbert demo: {', '.join(info.models)} model(s), gallery of {info.gallery_size} images; "
          f"open http://{args.host}:{args.port}/", flush=True)
    serve_demo(service, args.host, args.port)
    return 0
