"""Initialise the text stream (and the MLM head) from any BERT checkpoint: a directory or a hub name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertForPreTraining

# VLBertConfig keys that describe the text stream and come from the BERT config.
TEXT_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "pad_token_id",
)


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)  # our keys that received weights
    missing: list[str] = field(default_factory=list)  # text-stream keys the checkpoint lacked
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys with no place here

    def __str__(self) -> str:
        return (
            f"loaded {len(self.loaded)} tensors; missing {len(self.missing)}: {self.missing[:8]}; "
            f"unexpected {len(self.unexpected)}: {self.unexpected[:8]}"
        )


def text_config_from_bert(source: str) -> dict[str, Any]:
    """The text-stream keys of a BERT checkpoint's config, for `VLBertConfig`."""
    bert = BertConfig.from_pretrained(source)
    return {key: getattr(bert, key) for key in TEXT_KEYS if getattr(bert, key, None) is not None}


def _bert_to_ours(key: str, has_prefix: bool) -> str | None:
    """Map a `BertForPreTraining` key to ours; None when it has no place here."""
    prefix = "vlbert." if has_prefix else ""
    if key.startswith(("bert.embeddings.", "bert.encoder.layer.")):
        name = key[len("bert.") :]
        return None if name.endswith((".position_ids", ".token_type_ids")) else prefix + name
    if key.startswith("cls.predictions.") and has_prefix:
        return "mlm_head." + key[len("cls.predictions.") :]
    return None


def load_text_stream(model: nn.Module, source: str) -> LoadReport:
    """Copy BERT embeddings, layers and (for task models with one) the MLM head into `model`.

    `model` is a `VLBertModel` or a task model holding one under `vlbert`. Sizes must match: build
    the model with `text_config_from_bert(source)` (as `create_model(..., text_pretrained=)` does).
    """
    bert, info = BertForPreTraining.from_pretrained(source, output_loading_info=True)
    absent = set(info["missing_keys"])  # heads a plain BertModel checkpoint does not carry
    has_prefix = hasattr(model, "vlbert")
    ours = model.state_dict()
    report = LoadReport()
    with torch.no_grad():
        for key, value in bert.state_dict().items():
            target = _bert_to_ours(key, has_prefix)
            if key in absent or (target is not None and target not in ours):
                target = None
            if target is None:
                if key not in absent and not key.endswith((".position_ids", ".token_type_ids")):
                    report.unexpected.append(key)
                continue
            if ours[target].shape != value.shape:
                raise ValueError(f"{key} {tuple(value.shape)} does not fit {target} {tuple(ours[target].shape)}")
            ours[target].copy_(value)
            report.loaded.append(target)
    text_prefix = ("vlbert." if has_prefix else "") + "embeddings."
    layer_prefix = ("vlbert." if has_prefix else "") + "encoder.layer."
    loaded = set(report.loaded)
    report.missing = [k for k in ours if k.startswith((text_prefix, layer_prefix)) and k not in loaded
                      and not k.endswith((".position_ids", ".token_type_ids"))]
    return report
