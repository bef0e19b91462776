"""A saved model directory: what it holds (`config.json`, `model.safetensors`, the tokenizer files,
and `answers.json` for VQA models), writing it and reading it back for evaluation and prediction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from vlbert.config import VLBertConfig
from vlbert.data.pipeline.answers import AnswerVocab, read_answer_list
from vlbert.data.pipeline.tokenize import load_tokenizer
from vlbert.engine.distributed import default_device
from vlbert.factory import create_model
from vlbert.models.backbone import VLBertPreTrainedModel
from vlbert.models.tasks import TASK_BY_CLASS
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


def add_tokenizer_and_answers(directory: str | Path, tokenizer: str | Path | None = None,
                              answers: str | Path | None = None) -> list[str]:
    """Give a model directory that holds weights only (a converted original checkpoint) what
    `predict` and `evaluate` read beside them: the tokenizer (a directory, a `vocab.txt` or a hub
    name such as `bert-base-uncased`) and, for a VQA model, the answer list (see
    `read_answer_list`), one answer per output of the VQA head, in its order. Refuses a tokenizer
    with more ids than the model's vocabulary and an answer list of another length than the head.
    Returns what it wrote."""
    directory = model_directory(directory)
    config = VLBertConfig.from_pretrained(str(directory))
    written = []
    if answers is not None:
        if "vqa" not in {TASK_BY_CLASS.get(name) for name in config.architectures or []}:
            raise ConfigError(f"{directory} is not a VQA model: an answer list is for VQA models")
        vocab = read_answer_list(answers)
        if len(vocab) != config.num_answers:
            raise ConfigError(f"{answers} has {len(vocab)} answers; the VQA head of {directory} has "
                              f"{config.num_answers} outputs")
        vocab.save(directory / ANSWERS_FILE)
        written.append(f"{ANSWERS_FILE}: {len(vocab)} answers")
    if tokenizer is not None:
        loaded = load_tokenizer(tokenizer)
        if len(loaded) > config.vocab_size:
            raise ConfigError(f"tokenizer {tokenizer} has {len(loaded)} ids; the model's vocabulary has "
                              f"{config.vocab_size}")
        loaded.save_pretrained(str(directory))
        written.append(f"tokenizer: {tokenizer}, {len(loaded)} ids")
    return written
