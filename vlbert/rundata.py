"""How a run reads shards for its model: the data and collate settings a `RunConfig` gives for
training and for evaluation, and `data.blank_images`. Both the training loader (`vlbert.run`)
and the evaluation loader (`vlbert.eval.split`) are built from these."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import torch

from vlbert.data.pipeline.batch import Batch
from vlbert.data.pipeline.collate import CollateConfig
from vlbert.data.pipeline.images import ImageConfig
from vlbert.data.pipeline.loader import DataConfig
from vlbert.engine import distributed
from vlbert.models.backbone import VLBertPreTrainedModel
from vlbert.runconfig import RunConfig

SHARDED_EVAL_TASKS = ("vqa", "retrieval", "captioning")  # evaluated by every process on its share of the records


def data_config(cfg: RunConfig, model: VLBertPreTrainedModel, split: str | None, train: bool) -> DataConfig:
    """How to read shards for this model: regions or pixels, with evaluation settings when not training."""
    mc = model.config
    inputs = "regions" if mc.image_encoder == "regions" else "pixels"
    image = ImageConfig(size=mc.image_size)
    if inputs == "pixels":
        image = ImageConfig.from_model(model.vlbert.image_encoder.model, size=mc.image_size)
    caption_mode = train_caption_mode(cfg) if train else cfg.eval.caption_mode
    return DataConfig(
        inputs=inputs, split=split, max_length=cfg.data.max_length, caption_mode=caption_mode,
        shuffle_buffer=cfg.data.shuffle_buffer if train else 0, seed=cfg.train.seed, on_error=cfg.data.on_error,
        image=image, label_fraction=cfg.data.label_fraction if train else 1.0,
        question_subtypes=tuple(cfg.data.question_subtypes) if train else (),
        split_by_node=train, record_shard=(0, 1) if train else eval_shard(cfg.task),
    )


def train_caption_mode(cfg: RunConfig) -> str:
    """`data.train_captions`, with "auto" resolved for the task."""
    if cfg.data.train_captions != "auto":
        return cfg.data.train_captions
    return "random" if cfg.task in ("pretraining", "captioning") else "each"


def eval_shard(task: str) -> tuple[int, int]:
    """(rank, processes) under torchrun for the tasks whose evaluation gathers per-example results
    (`vlbert.eval.sharded`); (0, 1) otherwise: pre-training is evaluated whole by every process."""
    dist = distributed.info()
    return (dist.rank, dist.world_size) if task in SHARDED_EVAL_TASKS else (0, 1)


def collate_config(cfg: RunConfig, model: VLBertPreTrainedModel, train: bool) -> CollateConfig:
    """Pre-training masks tokens and regions (ITM negatives are made by the objective)."""
    if cfg.task != "pretraining":
        return CollateConfig(seed=cfg.train.seed)
    pixel_regions = None
    if model.config.image_encoder != "regions":
        pixel_regions = _pixel_region_count(model)
    focus = tuple(cfg.objective.mlm_focus_words)
    return CollateConfig.pretraining(pixel_regions=pixel_regions, seed=cfg.train.seed + (0 if train else 1),
                                     mlm_focus_words=focus, mlm_focus_prob=cfg.objective.mlm_focus_prob if focus else 0.0)


def _pixel_region_count(model: VLBertPreTrainedModel) -> int:
    size = model.config.image_size
    with torch.no_grad():
        regions = model.vlbert.encode_regions(pixel_values=torch.zeros(1, 3, size, size))
    return regions.features.shape[1]


def blank_images(batch: Batch) -> Batch:
    """The batch with its image input zeroed (features, boxes, pixels): what a text-only model sees."""
    zero = {name: None if value is None else torch.zeros_like(value)
            for name, value in (("region_features", batch.region_features), ("region_boxes", batch.region_boxes),
                                ("pixel_values", batch.pixel_values))}  # fmt: skip
    return replace(batch, **zero)


def maybe_blank(batches: Iterable[Batch], blank: bool) -> Iterable[Batch]:
    return (blank_images(b) for b in batches) if blank else batches
