"""A saved model directory: what it holds (`config.json`, `model.safetensors`, the tokenizer files,
and `answers.json` for VQA models), writing it and reading it back for evaluation and prediction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from vlbert.data.pipeline.answers import AnswerVocab
from vlbert.data.pipeline.tokenize import load_tokenizer
from vlbert.engine.distributed import default_device
from vlbert.factory import create_model
from vlbert.models.backbone import VLBertPreTrainedModel
from vlbert.runconfig import ConfigError
from vlbert.weights.checkpoint import resolve_directory

ANSWERS_FILE = "answers.json"


@dataclass
class RunParts:
    """A task model with its tokenizer and, for VQA, its answer vocabulary: what a run builds and a
    saved model directory holds."""

    model: VLBertPreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    answers: AnswerVocab | None


def save_model_dir(parts: RunParts, directory: Path, state_dict: dict[str, Any] | None = None) -> None:
    """Model, tokenizer and answer vocabulary together, ready for `predict` and `evaluate`
    (`state_dict`: the whole weights of a sharded model)."""
    parts.model.save_pretrained(directory, state_dict=state_dict)
    parts.tokenizer.save_pretrained(str(directory))
    if parts.answers is not None:
        parts.answers.save(directory / ANSWERS_FILE)


def model_directory(model_dir: str | Path) -> Path:
    """The local directory of a saved model (a hub id is downloaded); one without config.json is an error."""
    directory = resolve_directory(model_dir)
    if not (directory / "config.json").is_file():
        raise ConfigError(f"{model_dir} is not a model directory (no config.json)")
    return directory


def load_parts(model_dir: str | Path, task: str, device: str | None = None, adapter: str | Path | None = None,
               ) -> RunParts:
    """Model, tokenizer and answers of a saved model directory; with `adapter`, a base model plus
    the adapter directory a LoRA run wrote (merged into it; its tokenizer and answers, when it has
    them, are used)."""
    directory = model_directory(model_dir)
    sources = [Path(adapter), directory] if adapter is not None else [directory]
    answers_dir = next((d for d in sources if (d / ANSWERS_FILE).is_file()), None)
    answers = AnswerVocab.load(answers_dir / ANSWERS_FILE) if answers_dir is not None else None
    if task == "vqa" and answers is None:
        raise ConfigError(f"{sources[0]} has no {ANSWERS_FILE}: it is not a VQA model")
    sizes = {}
    if adapter is not None:
        from vlbert.engine.adapters import adapter_overrides, load_adapter

        sizes = {**adapter_overrides(adapter), **({"num_answers": len(answers)} if answers is not None else {})}
    model = create_model(str(directory), task=task, **sizes)  # a base's new head: the adapter's size
    if adapter is not None:
        model = load_adapter(model, adapter).eval()
    model.to(default_device(device))
    tokenizer_dir = next(d for d in sources if (d / "tokenizer_config.json").is_file() or d == directory)
    return RunParts(model, load_tokenizer(tokenizer_dir), answers)
