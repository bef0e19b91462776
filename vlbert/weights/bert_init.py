"""Initialise the text stream (and the MLM head) from any BERT checkpoint: a directory or a hub name."""

from __future__ import annotations

from typing import Any

from torch import nn
from transformers import BertConfig, BertForPreTraining

from vlbert.weights.checkpoint import LoadReport, copy_into

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
    mapped, unexpected = {}, []
    for key, value in bert.state_dict().items():
        target = _bert_to_ours(key, has_prefix)
        if key not in absent and target is not None and target in ours:
            mapped[target] = value
        elif key not in absent and not key.endswith((".position_ids", ".token_type_ids")):
            unexpected.append(key)  # by its BERT name
    report = copy_into(ours, mapped, source)
    report.unexpected = unexpected
    text_prefix = ("vlbert." if has_prefix else "") + "embeddings."
    layer_prefix = ("vlbert." if has_prefix else "") + "encoder.layer."
    loaded = set(report.loaded)
    report.missing = [k for k in ours if k.startswith((text_prefix, layer_prefix)) and k not in loaded
                      and not k.endswith((".position_ids", ".token_type_ids"))]
    return report
