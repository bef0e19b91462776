"""Time the import of published region features and the extraction of new ones; print images/s.

    python tools/bench_features.py import --num-images 5000
    python tools/bench_features.py extract --weights runs/detector/detector.pt --num-images 1000

`import`: an LMDB in the published layout (pickled records, base64 float32; 36 regions x 2048
features per image, and with `--classes 1601` a class distribution) is written to a temporary
folder first (not timed), then `vlbert make-shards vqav2 --features FILE.lmdb` (no images) is timed end to end:
reading, decoding, shard writing, manifest. `extract`: the built-in test scenes as PNG files,
then `vlbert extract-features` with the detector `tools/train_detector.py` saved, timed (the
model's loading apart). Each is the median of `--repeats` runs; run it alone on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.feature_files: the fixture writers

from tests.feature_files import make_images, write_lmdb, write_vqa_questions  # noqa: E402
from vlbert.cli import main as vlbert_main  # noqa: E402


def time_import(num_images: int, classes: int, work: Path) -> float:
    images = make_images(count=num_images, boxes=36, dim=2048, classes=classes)  # 36, 35 and 34 boxes
    store = write_lmdb(work / "features.lmdb", images)
    questions = write_vqa_questions(work / "q.json", images)
    argv = ["make-shards", "vqav2", "--questions", str(questions), "--features", str(store), "--out",
            str(work / "out"), "--no-progress", "--overwrite"]  # fmt: skip
    began = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        assert vlbert_main(argv) == 0
    return num_images / (time.perf_counter() - began)


def time_extract(weights: str, num_images: int, batch_size: int, work: Path) -> float:
    from vlbert.data.sources.extraction.detector import load_detector
    from vlbert.data.sources.extraction.folder import extract_folder
    from vlbert.data.sources.extraction.regions import BoxSelection, RegionExtractor
    from vlbert.data.sources.sort_of_clevr.shards import make_sample

    folder = work / "scenes"
    if not folder.is_dir():
        folder.mkdir()
        for index in range(num_images):
            (folder / f"{index:06d}.png").write_bytes(make_sample(index, split="test").image)
    model, _ = load_detector("torchvision:fasterrcnn_mobilenet_v3_large_fpn", weights)
    extractor = RegionExtractor(model, BoxSelection(max_boxes=10, min_boxes=1, score_threshold=0.5))
    out = work / f"features-{time.time_ns()}"
    began = time.perf_counter()
    summary = extract_folder(folder, out, extractor, batch_size, progress=False)
    assert summary.written == num_images, summary.format()
    return num_images / (time.perf_counter() - began)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("import", "extract"), help="which speed to measure")
    parser.add_argument("--num-images", type=int, default=2000, help="images per run (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs; the median is reported (default 3)")
    parser.add_argument("--classes", type=int, default=0,
                        help="import: classes of each region's distribution (default 0: none, as the COCO files)")
    parser.add_argument("--weights", help="extract: the detector tools/train_detector.py saved")
    parser.add_argument("--batch-size", type=int, default=16, help="extract: images per batch (default 16)")
    return parser


def main(argv: list[str] | None = None) -> float:
    args = build_parser().parse_args(argv)
    if args.what == "extract" and not args.weights:
        raise SystemExit("extract needs --weights (python tools/train_detector.py writes them)")
    rates = []
    with tempfile.TemporaryDirectory(prefix="vlbert-bench-") as work:
        for _ in range(args.repeats):
            if args.what == "import":
                rates.append(time_import(args.num_images, args.classes, Path(work)))
            else:
                rates.append(time_extract(args.weights, args.num_images, args.batch_size, Path(work)))
    print(f"{args.what}: {args.num_images} images, {args.repeats} runs, {torch.get_num_threads()} torch threads")
    print(f"images/s: median {statistics.median(rates):.0f}, best {max(rates):.0f}, worst {min(rates):.0f}")
    return statistics.median(rates)


if __name__ == "__main__":
    main()
