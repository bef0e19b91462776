"""`create_model` and `list_models`: build any task model from a preset, a saved directory, or
a preset with a BERT checkpoint as its text stream."""

from __future__ import annotations

import logging
import os
from typing import Any

from vlbert.config import VLBertConfig
from vlbert.models.backbone import VLBertPreTrainedModel
from vlbert.models.tasks import TASK_MODELS
from vlbert.presets import PRESETS
from vlbert.weights.bert_init import load_text_stream, text_config_from_bert

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
