"""Everything a run builds before training: tokenizer, answer vocabulary and model (the data
settings are `vlbert.rundata`; a saved model directory, written and read back, `vlbert.eval.saved`).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from vlbert.data.pipeline.answers import AnswerVocab
from vlbert.data.pipeline.tokenize import build_wordpiece_tokenizer, load_tokenizer
from vlbert.data.shards.records import read_records
from vlbert.data.shards.schema import RegionFeatures
from vlbert.eval.saved import ANSWERS_FILE, RunParts
from vlbert.factory import create_model
from vlbert.presets import PRESETS
from vlbert.runconfig import ConfigError, RunConfig

logger = logging.getLogger(__name__)


def _texts(root: str, split: str | None, max_records: int | None = None) -> list[str]:
    """Every caption and question of the split's first `max_records` records (None: all)."""
    texts = []
    for record in itertools.islice(read_records(root, split), max_records):
        texts.extend(record.meta.captions)
        texts.extend(q.question for q in record.meta.questions)
    return texts


def resolve_tokenizer(cfg: RunConfig, work_dir: Path) -> PreTrainedTokenizerBase:
    """The model's own tokenizer when starting from a saved model, else the configured BERT
    vocabulary, else the vocabulary this run built before (a resumed run), else a WordPiece
    vocabulary built from the training text."""
    if cfg.model.init and (Path(cfg.model.init) / "tokenizer_config.json").is_file():
        return load_tokenizer(cfg.model.init)
    if cfg.data.tokenizer:
        return load_tokenizer(cfg.data.tokenizer)
    built = work_dir / "tokenizer"
    if (built / "tokenizer_config.json").is_file():
        return load_tokenizer(built)
    if cfg.data.root is None:
        raise ConfigError("data.root is required to build a vocabulary (or set data.tokenizer)")
    splits = cfg.data.vocab_splits or [cfg.data.train_split]
    texts = [text for split in splits for text in _texts(cfg.data.root, split, cfg.data.vocab_max_records)]
    return build_wordpiece_tokenizer(texts, cfg.data.vocab_size, work_dir / "tokenizer")


def resolve_answers(cfg: RunConfig) -> AnswerVocab:
    if cfg.model.init and (Path(cfg.model.init) / ANSWERS_FILE).is_file():
        return AnswerVocab.load(Path(cfg.model.init) / ANSWERS_FILE)
    if cfg.data.root is None:
        raise ConfigError("data.root is required to build the VQA answer vocabulary")
    answers = [q.answers for r in read_records(cfg.data.root, cfg.data.train_split) for q in r.meta.questions]
    if not answers:
        raise ConfigError(f"{cfg.data.root} (split {cfg.data.train_split}) has no questions to build VQA answers from")
    return AnswerVocab.build(answers, top_k=cfg.data.num_answers)


def region_sizes(root: str, split: str | None) -> dict[str, int]:
    """`v_feature_size` and `v_target_size` (detector classes) of the first sample's region
    features; {} when it has none, no `v_target_size` without class probabilities."""
    record = next(iter(read_records(root, split)), None)
    if record is None or record.npz is None:
        return {}
    regions = RegionFeatures.from_npz_bytes(record.npz)
    sizes = {"v_feature_size": int(regions.features.shape[1])}
    if regions.class_probs is not None:
        sizes["v_target_size"] = int(regions.class_probs.shape[1])
    return sizes


def sizes_from_data(cfg: RunConfig, overrides: dict[str, Any]) -> dict[str, int]:
    """For a preset region model: the region sizes of the training data, but for those the user
    set in `model.overrides` (logged)."""
    preset = PRESETS.get(cfg.model.name)
    if preset is None or Path(cfg.model.name).is_dir() or cfg.data.root is None:
        return {}
    if overrides.get("image_encoder", preset.get("image_encoder", "regions")) != "regions":
        return {}
    sizes = region_sizes(cfg.data.root, cfg.data.train_split)
    derived = {key: value for key, value in sizes.items() if key not in cfg.model.overrides}
    if derived:
        said = ", ".join(f"{key}={value}" for key, value in derived.items())
        logger.info("model %s: %s from the region features in %s", cfg.model.name, said, cfg.data.root)
    return derived


def build_parts(cfg: RunConfig, work_dir: Path) -> RunParts:
    """Tokenizer, answers (VQA) and the task model, fresh or from `model.init`."""
    tokenizer = resolve_tokenizer(cfg, work_dir)
    answers = resolve_answers(cfg) if cfg.task == "vqa" else None
    overrides = dict(cfg.model.overrides)
    if answers is not None:
        overrides["num_answers"] = len(answers)
    if cfg.train.finetune.peft == "prompt":  # prompt tuning: the text stream gains its learned tokens
        overrides["num_prompt_tokens"] = cfg.train.finetune.prompt_tokens
    if cfg.model.init:  # a saved model; a new task head starts fresh (and is reported)
        model = create_model(cfg.model.init, task=cfg.task, **overrides)
    else:
        if not cfg.model.text_pretrained:
            overrides.setdefault("vocab_size", len(tokenizer))
        overrides.update(sizes_from_data(cfg, overrides))
        model = create_model(cfg.model.name, task=cfg.task, text_pretrained=cfg.model.text_pretrained, **overrides)
    if model.config.vocab_size < len(tokenizer):
        raise ConfigError(f"the tokenizer has {len(tokenizer)} tokens, the model's vocabulary {model.config.vocab_size}")
    return RunParts(model, tokenizer, answers)


