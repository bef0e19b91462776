"""Webdataset loading: shards -> examples -> batches, for one epoch at a time.

Per worker the pipeline is::

    shard urls (shuffled by seed and epoch) -> split_by_node -> split_by_worker
    -> ShardReader (tar samples, shard checks) -> RecordParser (json, members present)
    -> TaskExpander (one item per caption / question) -> shuffle buffer (seeded)
    -> skip to the resume position -> ExampleBuilder (decode, tokenise) -> Example

Images are decoded after the shuffle buffer (the buffer holds encoded bytes) and after the resume
skip (skipped items are never decoded). Every stream is deterministic given (seed, epoch, rank,
worker), so a run resumed from a `StreamPosition` sees exactly the remaining examples, in order;
the trainer's checkpoint keeps the number of batches it consumed, and `batch_factory` turns that
into each worker's position (`StreamPosition.after_batches`).
Counts of skipped input travel with the examples to the main process (`Batch.stats`), where
`EpochLoader` hands them to its ``report`` at the end of the epoch (or when the reader stops
part-way); the default, `report_skips`, prints one line on stderr for an epoch that skipped anything.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Sequence

import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset
from transformers import PreTrainedTokenizerBase

from vlbert.data.pipeline.answers import AnswerVocab
from vlbert.data.pipeline.batch import Batch, Example
from vlbert.data.pipeline.collate import CollateConfig, Collator
from vlbert.data.pipeline.examples import IMAGE_REASONS, ExampleBuilder
from vlbert.data.pipeline.images import ImageConfig, build_image_transform
from vlbert.data.pipeline.items import Item, TaskExpander, check_text
from vlbert.data.pipeline.masking import derive_seed
from vlbert.data.pipeline.tokenize import TextEncoder, TextSpec
from vlbert.data.shards.records import RecordParser, ShardReader, ShardSource, resolve_shards
from vlbert.data.shards.schema import DataError
from vlbert.data.shards.stats import DataStats, ErrorPolicy, SampleError

logger = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """How shards become examples (the texts to read are an argument of `make_dataset`)."""

    inputs: str = "regions"  # "regions" (npz features) or "pixels" (decoded images)
    split: str | None = None  # pick the manifest's shards of this split
    max_length: int = 40  # tokens, with [CLS] and [SEP]
    max_regions: int | None = None  # keep the first N regions (detectors sort them by confidence)
    caption_mode: str = "each"  # "each" caption is an example, or one "random" / "first" per image
    label_fraction: float = 1.0  # VQA: train on this fixed fraction of the questions (by id hash)
    question_subtypes: tuple[str, ...] = ()  # VQA: only questions of these subtypes (empty: all)
    shuffle_buffer: int = 1000  # 0: no shuffling at all (shard order kept, for evaluation)
    shuffle_initial: int = 100
    seed: int = 0
    on_error: str = "skip"  # "skip" (count) or "raise" bad input
    on_long_text: str = "truncate"  # "truncate" (count) or "error" (apply on_error)
    image: ImageConfig = field(default_factory=ImageConfig)
    image_cache_mb: float = 128.0  # decoded images kept per worker (off with random augmentation)
    split_by_node: bool = True  # under torchrun each process reads its own shards (off: every process reads all)
    record_shard: tuple[int, int] = (0, 1)  # (r, n): decode only records r, r + n, ... of the stream (evaluation)


@dataclass
class StreamPosition:
    """How far each DataLoader worker's stream got in an epoch: where a resumed epoch starts."""

    epoch: int = 0
    num_workers: int = 0
    offsets: dict[int, int] = field(default_factory=dict)  # worker -> examples consumed

    @classmethod
    def after_batches(cls, epoch: int, batches: int, batch_size: int, num_workers: int) -> StreamPosition:
        """The position after the first ``batches`` batches of an epoch, when only their number
        was saved: the DataLoader takes batches from its workers in turn, so worker w gave batches
        w, w + W, ... This is exact while every worker still had full batches to give (near the
        end of an epoch whose workers ran out unevenly it is not)."""
        workers = max(1, num_workers)
        given = {w: max(0, -(-(batches - w) // workers)) for w in range(workers)}
        return cls(epoch, num_workers, {w: n * batch_size for w, n in given.items() if n})

    def start(self, worker: int, num_workers: int) -> int:
        if self.offsets and max(1, num_workers) != max(1, self.num_workers):
            raise DataError(
                f"the position was saved with {self.num_workers} workers; resume with as many, not {num_workers}"
            )
        return self.offsets.get(worker, 0)


class ShardDataset(IterableDataset):
    """One epoch of `Example` s of ``text`` (each caption or each question) from webdataset shards
    (see the module doc)."""

    def __init__(
        self,
        shards: ShardSource,
        text: str,
        tokenizer: PreTrainedTokenizerBase,
        config: DataConfig,
        answer_vocab: AnswerVocab | None = None,
        epoch: int = 0,
        start: StreamPosition | int = 0,
    ) -> None:
        super().__init__()
        self.shards, self.text, self.config, self.epoch, self.start = shards, text, config, epoch, start
        transform = build_image_transform(config.image) if config.inputs == "pixels" else None
        cache = 0 if config.image.augment else int(config.image_cache_mb * 2**20)
        self.builder = ExampleBuilder(TextEncoder(tokenizer, config.max_length), config.inputs, transform,
                                      config.max_regions, answer_vocab, config.on_long_text, cache)  # fmt: skip
        check_text(text, config.caption_mode)
        ErrorPolicy(config.on_error)  # validates on_error

    def skip_for(self, worker: int, num_workers: int) -> int:
        if isinstance(self.start, StreamPosition):
            if self.start.offsets and self.start.epoch != self.epoch:
                raise DataError(f"the position is in epoch {self.start.epoch}, the dataset reads epoch {self.epoch}")
            return self.start.start(worker, num_workers)
        if self.start and num_workers > 1:
            raise DataError("an integer start position needs num_workers <= 1; pass a StreamPosition")
        return int(self.start)

    def items(self, policy: ErrorPolicy, rank: int, worker: int) -> wds.DataPipeline:
        """The undecoded, shuffled item stream of this rank and worker."""
        cfg = self.config
        shuffle = cfg.shuffle_buffer > 0
        stages: list[Any] = [
            wds.SimpleShardList(self.shards.urls, seed=derive_seed(cfg.seed, self.epoch) if shuffle else None),
            *([wds.split_by_node] if cfg.split_by_node else []),
            wds.split_by_worker,
            ShardReader(policy, self.shards.counts),
            RecordParser(policy, needs_image=cfg.inputs == "pixels", needs_features=cfg.inputs == "regions"),
            TaskExpander(self.text, policy, cfg.caption_mode, cfg.seed, self.epoch, cfg.label_fraction,
                         cfg.question_subtypes),
        ]
        if shuffle:
            seed = derive_seed(cfg.seed, self.epoch, rank, worker)
            stages.append(wds.shuffle(cfg.shuffle_buffer, cfg.shuffle_initial, seed=seed))
        return wds.DataPipeline(*stages)

    def __iter__(self) -> Iterator[Example]:
        rank, _, worker, num_workers = wds.utils.pytorch_worker_info()
        policy = ErrorPolicy(self.config.on_error)
        skip = self.skip_for(worker, num_workers)
        items = iter(self.items(policy, rank, worker))
        examples = build_examples(items, self.builder, policy, worker, skip, self.config.record_shard)
        return attach_stats(examples, policy, worker)


def build_examples(
    items: Iterator[Item], builder: ExampleBuilder, policy: ErrorPolicy, worker: int, skip: int = 0,
    record_shard: tuple[int, int] = (0, 1),
) -> Iterator[Example]:
    """Decode items from stream position ``skip`` on, of the records ``r, r + n, ...`` only
    (``record_shard`` (r, n); every item keeps its position in the whole stream). An image that
    fails is counted once per sample, however many items (questions, captions) share it."""
    bad_keys: set[str] = set()
    shard, shards = record_shard
    ordinal, record = -1, None
    for position, item in enumerate(items):
        if item.record is not record:
            ordinal, record = ordinal + 1, item.record
        if position < skip or ordinal % shards != shard or item.record.key in bad_keys:
            continue
        try:
            example = builder(item, policy.pending)
        except SampleError as error:
            if error.reason in IMAGE_REASONS:
                bad_keys.add(item.record.key)
            policy.bad(error.reason, item.record.url, item.record.key, error.detail)
            continue
        example.worker, example.position = worker, position
        policy.pending.examples += 1
        yield example


def attach_stats(examples: Iterator[Example], policy: ErrorPolicy, worker: int) -> Iterator[Example]:
    """Hand the counts on with the examples: each example carries the counts made since the
    previous one; the last carries everything left when the stream ends (one example late)."""
    held: Example | None = None
    for example in examples:
        if held is not None:
            held.stats = policy.take()
            yield held
        held = example
    if held is not None:
        held.stats = policy.take()
        yield held
    elif not policy.pending.is_empty():  # nothing to carry the counts to the main process
        logger.warning("worker %d yielded no examples; %s", worker, policy.take().summary())


def make_dataset(
    source: str | os.PathLike[str] | Sequence[str],
    text: str,
    tokenizer: PreTrainedTokenizerBase,
    config: DataConfig | None = None,
    answer_vocab: AnswerVocab | None = None,
    epoch: int = 0,
    start: StreamPosition | int = 0,
) -> ShardDataset:
    """Examples of ``text`` ("captions": one per caption; "questions": one per VQA question) from a
    shard directory, a tar path / brace pattern or a list of urls, for ``epoch``, starting at
    ``start``. A task's texts are `vlbert.models.tasks.task_text(task)`."""
    config = config or DataConfig()
    return ShardDataset(resolve_shards(source, config.split), text, tokenizer, config, answer_vocab, epoch, start)


@dataclass
class EpochReport:
    """What an `EpochLoader` read of one epoch: all of it, or what was read before its reader
    stopped (``finished`` False, e.g. training reached ``max_steps`` part-way through the epoch)."""

    epoch: int
    stats: DataStats
    finished: bool = True

    def line(self) -> str:
        """E.g. ``epoch 0: skipped 1 of 64 samples: bad_json 1`` (``epoch 1 (so far): ...``)."""
        return self.stats.skip_line(f"epoch {self.epoch}" + ("" if self.finished else " (so far)"))


def report_skips(report: EpochReport, prefix: str = "") -> None:
    """The default report: one line on stderr for an epoch that skipped anything, whatever the
    logging setup; every epoch's full counts at INFO."""
    logger.info("%s%s", prefix, report.stats.summary(report.epoch))
    if report.stats.num_skipped:
        print(prefix + report.line(), file=sys.stderr, flush=True)


Report = Callable[[EpochReport], None]


class EpochLoader:
    """A DataLoader over one epoch that adds up the workers' `DataStats` and hands them to
    ``report`` when the epoch ends or its reader stops part-way."""

    def __init__(self, dataset: ShardDataset, loader: DataLoader, report: Report | None = report_skips) -> None:
        self.dataset, self.loader, self.report = dataset, loader, report
        self.stats = DataStats()

    def __iter__(self) -> Iterator[Batch]:
        self.stats, finished = DataStats(), False
        try:
            for batch in self.loader:
                self.stats.add(batch.stats)
                yield batch
            finished = True
        finally:  # also when the reader stops early (the generator is closed)
            if self.report is not None and (finished or not self.stats.is_empty()):
                self.report(EpochReport(self.dataset.epoch, self.stats, finished))


def make_loader(
    dataset: ShardDataset,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    collate: CollateConfig | None = None,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    report: Report | None = report_skips,
) -> EpochLoader:
    """Batches of ``dataset`` (every batch from one worker). ``collate`` draws its masking seed
    from (collate.seed, dataset epoch, batch content)."""
    collate = replace(collate or CollateConfig(), epoch=dataset.epoch)
    collator = Collator(TextSpec.from_tokenizer(tokenizer, collate.mlm_focus_words), collate)
    # The loader's own generator: making an iterator must not draw from the global RNG, or a
    # resumed run (which makes its first iterator mid-epoch) would get other dropout masks.
    generator = torch.Generator().manual_seed(derive_seed(collate.seed, dataset.epoch))
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collator, num_workers=num_workers,
                        drop_last=drop_last, pin_memory=pin_memory, generator=generator)  # fmt: skip
    return EpochLoader(dataset, loader, report)


def batch_factory(
    source: str | os.PathLike[str] | Sequence[str],
    text: str,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    config: DataConfig | None = None,
    collate: CollateConfig | None = None,
    answer_vocab: AnswerVocab | None = None,
    num_workers: int = 0,
    report: Report | None = report_skips,
) -> Callable[[int, int], Iterator[Batch]]:
    """``make_batches(epoch, skip)`` for the trainer: the epoch's batches after the first ``skip``
    (see `StreamPosition.after_batches`)."""
    shards = resolve_shards(source, (config or DataConfig()).split)

    def make_batches(epoch: int, skip: int) -> Iterator[Batch]:
        start = StreamPosition.after_batches(epoch, skip, batch_size, num_workers)
        dataset = ShardDataset(shards, text, tokenizer, config or DataConfig(), answer_vocab, epoch, start)
        return iter(make_loader(dataset, tokenizer, batch_size, collate, num_workers, report=report))

    return make_batches
