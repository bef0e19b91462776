"""`create_model` and `list_models`: build any task model from a preset, a saved directory, or
a preset with a BERT checkpoint as its text stream; `convert_checkpoint`: a model directory from
an original ViLBERT checkpoint."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from vlbert.config import VLBertConfig
from vlbert.models.backbone import VLBertPreTrainedModel
from vlbert.models.task_tokens import TASK_ID_FOR_HEAD
from vlbert.models.tasks import TASK_MODELS
from vlbert.presets import PRESETS
from vlbert.weights.bert_init import load_text_stream, text_config_from_bert
from vlbert.weights.convert_vilbert import (
    ConversionReport,
    implied_config,
    load_original_state_dict,
    original_to_vlbert,
    read_original_config,
)

logger = logging.getLogger(__name__)


def list_models() -> list[str]:
    """Names of the built-in configurations."""
    return sorted(PRESETS)


def create_config(name: str, **overrides: Any) -> VLBertConfig:
    """The preset `name` with `overrides` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}, or a saved directory")
    return VLBertConfig(**{**PRESETS[name], **overrides})


def create_model(
    name: str,
    task: str = "backbone",
    text_pretrained: str | None = None,
    **overrides: Any,
) -> VLBertPreTrainedModel:
    """Build a model.

    name: a preset (see `list_models()`) or a directory written by `save_pretrained`.
    task: "backbone" or one of `vlbert.tasks.TASKS` ("pretraining", "vqa", "retrieval", "captioning").
    text_pretrained: a BERT checkpoint directory or hub name; its config sets the text stream's
        sizes and its weights initialise the text stream (and the MLM head where there is one).
    overrides: any `VLBertConfig` key, e.g. `num_answers=3129`, `image_pretrained="vit.safetensors"`.
    """
    if task not in TASK_MODELS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASK_MODELS)}")
    cls = TASK_MODELS[task]
    if os.path.isdir(name):
        if text_pretrained is not None:
            raise ValueError("text_pretrained applies to presets; a saved directory already has its weights")
        return cls.from_pretrained(name, **overrides)
    if text_pretrained is not None:
        overrides = {**text_config_from_bert(text_pretrained), **overrides}
    model = cls(create_config(name, **overrides))
    if text_pretrained is not None:
        report = load_text_stream(model, text_pretrained)
        logger.info("text stream from %s: %s", text_pretrained, report)
        if report.missing:
            raise ValueError(f"{text_pretrained} lacks text-stream weights: {report.missing[:8]}")
    return model


def convert_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    config_json: str | Path | None = None,
    task: str = "pretraining",
    **overrides: Any,
) -> ConversionReport:
    """Convert an original checkpoint (facebookresearch/vilbert-multi-task) into a vlbert model
    directory that `create_model` loads; the key mapping is `vlbert.weights.convert_vilbert`'s.

    A checkpoint with `bert.embeddings.task_embeddings` (12-in-1, trained with
    `--task_specific_tokens`, which the released config file does not record) turns
    `task_specific_tokens` on, and `default_task_id` to the task the head was trained on where
    that is one task (`vqa`: 1); pass `default_task_id=` to choose (e.g. 8 for Flickr30k retrieval)."""
    report = original_to_vlbert(load_original_state_dict(checkpoint), task)
    if report.unknown:
        raise ValueError(f"{checkpoint}: keys this converter does not know: {report.unknown[:10]}")
    overrides = {**implied_config(report, task, TASK_ID_FOR_HEAD.get(task)), **overrides}
    config = VLBertConfig(**{**read_original_config(config_json, report), **overrides})
    if report.task_specific_tokens and not config.task_specific_tokens:
        raise ValueError(f"{checkpoint}: the checkpoint has task embeddings (12-in-1's task tokens) but "
                         "task_specific_tokens=False was asked for: its outputs would not be the original's")
    report.default_task_id = config.default_task_id
    model = TASK_MODELS[task](config)
    own = model.state_dict()
    report.not_loaded = sorted(k for k in report.state_dict if k not in own)
    result = model.load_state_dict({k: v for k, v in report.state_dict.items() if k in own}, strict=False)
    missing_backbone = [k for k in result.missing_keys if k.startswith("vlbert.")]
    if missing_backbone:
        raise ValueError(f"{checkpoint}: backbone weights missing from the checkpoint: {missing_backbone[:10]}")
    report.new_heads = sorted({k.rsplit(".", 2)[0] for k in result.missing_keys})
    model.save_pretrained(str(out_dir))
    return report
