"""``vlbert make-shards SOURCE --out DIR ...``: write webdataset shards from a built-in or public source."""

from __future__ import annotations

import argparse
from typing import Callable, NamedTuple

from vlbert.data.shards.schema import DataError
from vlbert.data.shards.writer import WriteSummary
from vlbert.data.sources.converters import WriteOptions, convert_folder, convert_karpathy
from vlbert.data.sources.features.stores import FORMATS
from vlbert.data.sources.sort_of_clevr.shards import PRETRAIN_SPLIT, make_sort_of_clevr_shards, write_examples
from vlbert.data.sources.vqav2 import convert_vqav2

HELP = "write webdataset shards (and manifest.json) from Sort-of-CLEVR or a public dataset layout"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory for the shards and manifest.json")
    parser.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    parser.add_argument("--overwrite", action="store_true", help="replace the shards of a previous run in --out")


def _add_conversion(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--on-error", choices=("skip", "raise"), default="skip", help="missing/unreadable images")
    parser.add_argument("--features", help="per-image region features: a folder of {image_id}.npz, the original "
                        "project's LMDB or folder of .npy dicts, or a bottom-up-attention/LXMERT .tsv; with it, "
                        "--images is optional (samples then hold the features without the image)")
    parser.add_argument("--features-format", choices=FORMATS, default="auto",
                        help="what --features holds (default auto: by what the path holds)")
    parser.add_argument("--prefix", help="shard-name prefix (default: the source name)")
    parser.add_argument("--append", action="store_true",
                        help="add these splits to the shards already in --out (e.g. VQAv2 val after train)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the shards an interrupted or stopped run finished in --out and write the rest")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _options(args: argparse.Namespace) -> WriteOptions:
    if args.images is None and args.features is None:
        raise DataError("give --images, or --features to import region features without their images")
    return WriteOptions(
        shard_size=args.shard_size,
        on_error=args.on_error,
        features_dir=args.features,
        features_format=args.features_format,
        overwrite=args.overwrite,
        prefix=args.prefix,
        append=args.append,
        resume=args.resume,
        progress=not args.no_progress,
    )


def _add_sort_of_clevr(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-images", type=int, default=10000, help="training images (default 10000)")
    parser.add_argument("--num-val", type=int, default=0, help="validation images (default 0)")
    parser.add_argument("--num-test", type=int, default=0, help="test images (default 0)")
    parser.add_argument("--num-pretrain", type=int, default=0,
                        help="images of a caption-only 'pretrain' split (no questions, no image shared with "
                             "the other splits): a pre-training corpus apart from the task data (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the scenes and questions (default 0)")
    parser.add_argument("--questions-per-type", type=int, default=10, help="relational and non-relational each")
    parser.add_argument("--workers", type=int, default=1, help="processes writing shards in parallel")
    parser.add_argument("--resume", action="store_true", help="keep the finished shards of an interrupted run")
    parser.add_argument("--region-features", action="store_true",
                        help="add region features from the ground-truth boxes (an oracle detector)")
    parser.add_argument("--examples", type=int, default=0, metavar="N",
                        help="also save the first N held-out images as PNG files in OUT/examples, with "
                             "their questions (questions.tsv), to try `vlbert predict --image` on")


def _run_sort_of_clevr(args: argparse.Namespace) -> WriteSummary:
    splits = {"train": args.num_images, "val": args.num_val, "test": args.num_test, PRETRAIN_SPLIT: args.num_pretrain}
    if args.examples < 0:
        raise DataError(f"--examples must be >= 0, got {args.examples}")
    summary = make_sort_of_clevr_shards(
        args.out,
        {name: count for name, count in splits.items() if count > 0},
        seed=args.seed,
        shard_size=args.shard_size,
        workers=args.workers,
        questions_per_type=args.questions_per_type,
        overwrite=args.overwrite,
        resume=args.resume,
        regions=args.region_features,
        caption_only=(PRETRAIN_SPLIT,) if args.num_pretrain > 0 else (),
    )
    if args.examples:
        split = next((name for name in ("test", "val", "train") if splits[name] > 0), "test")
        paths = write_examples(args.out, split, args.examples, args.seed, args.questions_per_type)
        print(f"wrote {len(paths)} example images ({split} split) and their questions to {paths[0].parent}")
    return summary


def _add_folder(parser: argparse.ArgumentParser) -> None:
    _add_conversion(parser)
    parser.add_argument("--images", help="image folder (paths in the captions file are relative to it; without it, "
                        "with --features, the captions file's \"image\" is the image id)")
    parser.add_argument("--captions", help='.jsonl ({"image", "caption(s)" and/or "questions": [{"question", "answers"}]}) or .csv (image,caption)')
    parser.add_argument("--split", default="train",
                        help="the split these images are written as, e.g. train or val (default train)")


def _run_folder(args: argparse.Namespace) -> WriteSummary:
    return convert_folder(args.images, args.out, args.captions, args.split, _options(args))


def _add_karpathy(parser: argparse.ArgumentParser) -> None:
    _add_conversion(parser)
    parser.add_argument("--annotations", required=True, help="dataset_coco.json or dataset_flickr30k.json")
    parser.add_argument("--images", help="images root (COCO: holding train2014/ and val2014/); optional with --features")
    parser.add_argument("--split", help="comma-separated splits to keep, e.g. train or val,test (default: all)")
    parser.add_argument("--keep-restval", action="store_true", help="keep 'restval' apart instead of in train")


def _karpathy_runner(dataset: str) -> Callable[[argparse.Namespace], WriteSummary]:
    def run(args: argparse.Namespace) -> WriteSummary:
        splits = args.split.split(",") if args.split else None
        merge_restval = not args.keep_restval
        return convert_karpathy(args.annotations, args.images, args.out, dataset, splits, merge_restval, _options(args))

    return run


def _add_vqav2(parser: argparse.ArgumentParser) -> None:
    _add_conversion(parser)
    parser.add_argument("--questions", required=True, help="e.g. v2_OpenEnded_mscoco_val2014_questions.json")
    parser.add_argument("--annotations", help="e.g. v2_mscoco_val2014_annotations.json (none for test splits)")
    parser.add_argument("--images", help="folder of COCO_{subtype}_{image_id:012d}.jpg; optional with --features")
    parser.add_argument("--subtype", help="image subtype, e.g. val2014 (default: the questions file's)")
    parser.add_argument("--split", help="split label (default: from the subtype, e.g. val)")


def _run_vqav2(args: argparse.Namespace) -> WriteSummary:
    options = _options(args)
    return convert_vqav2(args.questions, args.images, args.out, args.annotations, args.subtype, args.split, options)


class Source(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    make: Callable[[argparse.Namespace], WriteSummary]


SOURCES: dict[str, Source] = {
    "sort-of-clevr": Source("generate Sort-of-CLEVR (no download)", _add_sort_of_clevr, _run_sort_of_clevr),
    "folder": Source("an image folder, captions in JSONL or CSV", _add_folder, _run_folder),
    "coco-karpathy": Source("COCO captions, Karpathy splits", _add_karpathy, _karpathy_runner("coco")),
    "flickr30k-karpathy": Source("Flickr30k captions, Karpathy splits", _add_karpathy, _karpathy_runner("flickr30k")),
    "vqav2": Source("VQAv2 questions, annotations and COCO images", _add_vqav2, _run_vqav2),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sources = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for name, source in SOURCES.items():
        sub = sources.add_parser(name, help=source.help, description=source.help)
        _add_common(sub)
        source.add_arguments(sub)
        sub.set_defaults(make=source.make)


def run(args: argparse.Namespace) -> int:
    summary = args.make(args)
    print(summary.format())
    return 0
