"""The task's metrics on a split of shards: the evaluation loader, the task's loop, and a saved
model directory evaluated (what `vlbert evaluate` does)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from vlbert.data.pipeline.batch import Batch
from vlbert.data.pipeline.loader import EpochLoader, make_dataset, make_loader
from vlbert.data.shards.stats import DataStats
from vlbert.eval.captioning import evaluate_captioning
from vlbert.eval.gallery import evaluate_retrieval
from vlbert.eval.pretraining import evaluate_pretraining
from vlbert.eval.saved import RunParts, load_parts
from vlbert.eval.vqa import evaluate_vqa
from vlbert.models.tasks import task_text
from vlbert.runconfig import RunConfig
from vlbert.rundata import collate_config, data_config, maybe_blank


def eval_loader(cfg: RunConfig, parts: RunParts, split: str | None) -> EpochLoader:
    """The evaluation loader of `split` in shard order, no masking but pre-training's; it counts
    what it skips in `EpochLoader.stats` and reports nothing itself."""
    dataset = make_dataset(cfg.data.root, task_text(cfg.task), parts.tokenizer,
                           data_config(cfg, parts.model, split, train=False), parts.answers)
    return make_loader(dataset, parts.tokenizer, cfg.data.eval_batch_size,
                       collate_config(cfg, parts.model, train=False), report=None)


def eval_batches(cfg: RunConfig, parts: RunParts, split: str | None) -> Iterable[Batch]:
    """The evaluation batches of `split` (see `eval_loader`)."""
    return maybe_blank(eval_loader(cfg, parts, split), cfg.data.blank_images)


@dataclass
class SplitEvaluation:
    metrics: dict[str, float]  # the task's metrics
    data: DataStats  # what was read, and what was skipped and why


def evaluate_split(cfg: RunConfig, parts: RunParts, split: str | None) -> SplitEvaluation:
    """The task's metrics on `split`, and what the loader read and skipped."""
    loader, model, limit = eval_loader(cfg, parts, split), parts.model, cfg.eval.limit
    batches = maybe_blank(loader, cfg.data.blank_images)
    was_training = model.training
    model.eval()
    try:
        if cfg.task == "vqa":
            metrics = evaluate_vqa(model, batches, parts.answers, limit)
        elif cfg.task == "retrieval":
            metrics = evaluate_retrieval(model, batches, cfg.eval.retrieval_mode, cfg.eval.k, limit)
        elif cfg.task == "captioning":
            metrics = evaluate_captioning(model, batches, parts.tokenizer, cfg.eval.num_beams,
                                          cfg.eval.max_caption_length, limit)
        else:
            metrics = evaluate_pretraining(model, batches, limit)
    finally:
        model.train(was_training)
    return SplitEvaluation(metrics, loader.stats)


def evaluate_parts(cfg: RunConfig, parts: RunParts, split: str | None) -> dict[str, float]:
    """The task's metrics on `split`; samples the loader skipped are said in one line on stderr."""
    result = evaluate_split(cfg, parts, split)
    if result.data.num_skipped:
        print(result.data.skip_line(f"evaluation of split {split}"), file=sys.stderr, flush=True)
    return result.metrics


def evaluate_model_dir(cfg: RunConfig, model_dir: str | Path, data_root: str, split: str | None,
                       adapter: str | Path | None = None) -> SplitEvaluation:
    """The task's metrics on `split` of `data_root`, and what the loader read and skipped."""
    parts = load_parts(model_dir, cfg.task, cfg.device, adapter)
    cfg = replace(cfg, data=replace(cfg.data, root=data_root))
    return evaluate_split(cfg, parts, split)
