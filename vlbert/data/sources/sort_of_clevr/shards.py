"""Sort-of-CLEVR samples in the shard format, and the shard set for any number of images.

Shard ``i`` of a split holds images ``i * shard_size ..`` of that split, and each image depends only
on (seed, split, index), so shards can be written by parallel workers or skipped when a previous
run already finished them, and the output is byte-identical either way.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterator, Mapping

from vlbert.data.shards.schema import DataError, SampleQuestion, SampleRecord, ShardSample
from vlbert.data.shards.writer import (
    MANIFEST,
    ShardInfo,
    WriteSummary,
    prepare_output_dir,
    series_prefix,
    shard_name,
    write_manifest,
    write_shard,
)
from vlbert.data.sources.sort_of_clevr.captions import make_captions
from vlbert.data.sources.sort_of_clevr.regions import oracle_regions
from vlbert.data.sources.sort_of_clevr.scenes import (
    QUESTIONS_PER_TYPE,
    Scene,
    SceneQuestion,
    encode_png,
    image_rng,
    render_scene,
    sample_questions,
    sample_scene,
)

SOURCE = "sort-of-clevr"
PREFIX = "sortofclevr"
PRETRAIN_SPLIT = "pretrain"  # the caption-only pre-training corpus (`make_sort_of_clevr_shards(caption_only=...)`)


def sample_key(split: str, index: int) -> str:
    return f"{PREFIX}_{split}_{index:08d}"


def scene_record(
    scene: Scene, key: str, split: str, captions: list[str], questions: list[SceneQuestion]
) -> SampleRecord:
    """The ``json`` member: captions, questions with their one answer, and the objects' boxes."""
    return SampleRecord(
        id=key,
        image_id=key,
        width=scene.size,
        height=scene.size,
        source=SOURCE,
        split=split,
        captions=captions,
        questions=[
            SampleQuestion(f"{key}_q{j:02d}", q.question, [q.answer], q.type, q.subtype)
            for j, q in enumerate(questions)
        ],
        boxes=[obj.box for obj in scene.objects],
        labels=[obj.label for obj in scene.objects],
    )


def make_sample(
    index: int, seed: int = 0, split: str = "train", questions_per_type: int = QUESTIONS_PER_TYPE,
    regions: bool = False,
) -> ShardSample:
    """Image ``index`` of ``split``: scene, PNG, questions and captions, all from its own stream;
    with ``regions``, also the oracle detector's region features (an ``npz`` member)."""
    rng = image_rng(seed, split, index)
    scene = sample_scene(rng)
    questions = sample_questions(scene, rng, questions_per_type)
    captions = make_captions(scene, rng)
    key = sample_key(split, index)
    record = scene_record(scene, key, split, captions, questions)
    image = render_scene(scene)
    features = oracle_regions(scene, image, random.Random(f"{key}/regions")) if regions else None
    return ShardSample(key, encode_png(image), "png", record, features)


def generate_samples(
    count: int, seed: int = 0, split: str = "train", start: int = 0, questions_per_type: int = QUESTIONS_PER_TYPE,
    regions: bool = False,
) -> Iterator[ShardSample]:
    """Images ``start .. start + count - 1`` of ``split``."""
    for index in range(start, start + count):
        yield make_sample(index, seed, split, questions_per_type, regions)


@dataclass(frozen=True)
class _ShardTask:
    path: str
    split: str
    start: int
    count: int
    seed: int
    questions_per_type: int
    regions: bool


def _run_task(task: _ShardTask) -> ShardInfo:
    if not os.path.exists(task.path):  # an existing file is complete: write_shard renames at the end
        samples = generate_samples(
            task.count, task.seed, task.split, task.start, task.questions_per_type, task.regions
        )
        write_shard(task.path, samples)
    return ShardInfo(os.path.basename(task.path), task.count, task.split)


def _plan(
    out_dir: Path, splits: Mapping[str, int], seed: int, shard_size: int, per_type: int, regions: bool,
    caption_only: set[str],
) -> list[_ShardTask]:
    tasks = []
    for split, total in splits.items():
        prefix = series_prefix(PREFIX, split)
        for shard, start in enumerate(range(0, total, shard_size)):
            count = min(shard_size, total - start)
            path = str(out_dir / shard_name(prefix, shard))
            questions = 0 if split in caption_only else per_type
            tasks.append(_ShardTask(path, split, start, count, seed, questions, regions))
    return tasks


def make_sort_of_clevr_shards(
    out_dir: str | os.PathLike[str],
    splits: Mapping[str, int],
    seed: int = 0,
    shard_size: int = 1000,
    workers: int = 1,
    questions_per_type: int = QUESTIONS_PER_TYPE,
    overwrite: bool = False,
    resume: bool = False,
    regions: bool = False,
    caption_only: Collection[str] = (),
) -> WriteSummary:
    """Write ``splits`` (name -> number of images, e.g. ``{"train": 9800, "test": 200}``) as shards.

    ``resume`` keeps the shards an interrupted run already finished and writes the rest;
    ``regions`` adds the oracle detector's region features (see ``vlbert.data.sources.sort_of_clevr.regions``);
    the splits named in ``caption_only`` get captions and no questions (a pre-training corpus). Each
    split draws its own scenes (an image depends on seed, split and index), so no image of one split
    is an image of another.
    """
    if shard_size < 1 or workers < 1 or any(n < 0 for n in splits.values()):
        raise DataError("shard size and workers must be at least 1 and image counts non-negative")
    path = Path(out_dir)
    if resume and (path / MANIFEST).exists():
        raise DataError(f"{path} is already complete ({MANIFEST} exists); nothing to resume")
    if not resume:
        prepare_output_dir(path, overwrite)
    path.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(caption_only) - set(splits))
    if unknown:
        raise DataError(f"caption-only split {unknown[0]!r} is not one of the splits written ({', '.join(splits)})")
    tasks = _plan(path, splits, seed, shard_size, questions_per_type, regions, set(caption_only))
    began = time.perf_counter()
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            shards = list(pool.map(_run_task, tasks))
    else:
        shards = [_run_task(task) for task in tasks]
    meta = {"seed": seed, "questions_per_type": questions_per_type, "shard_size": shard_size, "regions": regions,
            "caption_only": sorted(caption_only)}
    write_manifest(path, SOURCE, shards, meta)
    return WriteSummary(str(path), SOURCE, shards, seconds=time.perf_counter() - began)


EXAMPLES_DIR = "examples"


def write_examples(
    out_dir: str | os.PathLike[str], split: str, count: int, seed: int = 0,
    questions_per_type: int = QUESTIONS_PER_TYPE,
) -> list[Path]:
    """Images ``0 .. count - 1`` of ``split`` as PNG files in ``out_dir/examples`` (``test-000.png``,
    ...), for `vlbert predict --image`, with ``questions.tsv``: file, question, answer per line.
    They are the same scenes as the shards' (each depends only on seed, split and index)."""
    folder = Path(out_dir) / EXAMPLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    paths, lines = [], ["file\tquestion\tanswer"]
    for index in range(count):
        sample = make_sample(index, seed, split, questions_per_type)
        path = folder / f"{split}-{index:03d}.png"
        path.write_bytes(sample.image)
        paths.append(path)
        lines += [f"{path.name}\t{q.question}\t{q.answers[0]}" for q in sample.record.questions]
    (folder / "questions.tsv").write_text("\n".join(lines) + "\n")
    return paths
