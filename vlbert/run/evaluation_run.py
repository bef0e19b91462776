"""Evaluate a saved model directory (what `vlbert evaluate` does)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import vlbert
from vlbert.data.tokenize import load_tokenizer
from vlbert.data.vqa import AnswerVocab
from vlbert.engine.distributed import default_device
from vlbert.run.setup import ANSWERS_FILE, RunParts
from vlbert.run.training import SplitEvaluation, evaluate_split
from vlbert.runconfig import ConfigError, RunConfig
from vlbert.weights.checkpoint import resolve_directory


def model_directory(model_dir: str | Path) -> Path:
    """The local directory of a saved model (a hub id is downloaded); one without config.json is an error."""
    directory = resolve_directory(model_dir)
    if not (directory / "config.json").is_file():
        raise ConfigError(f"{model_dir} is not a model directory (no config.json)")
    return directory


def load_parts(model_dir: str | Path, task: str, device: str | None = None) -> RunParts:
    """Model, tokenizer and answers of a saved model directory."""
    directory = model_directory(model_dir)
    answers = AnswerVocab.load(directory / ANSWERS_FILE) if (directory / ANSWERS_FILE).is_file() else None
    if task == "vqa" and answers is None:
        raise ConfigError(f"{directory} has no {ANSWERS_FILE}: it is not a VQA model")
    model = vlbert.create_model(str(directory), task=task)
    model.to(default_device(device))
    return RunParts(model, load_tokenizer(directory), answers)


def evaluate_model_dir(cfg: RunConfig, model_dir: str | Path, data_root: str, split: str | None) -> SplitEvaluation:
    """The task's metrics on `split` of `data_root`, and what the loader read and skipped."""
    parts = load_parts(model_dir, cfg.task, cfg.device)
    cfg = replace(cfg, data=replace(cfg.data, root=data_root))
    return evaluate_split(cfg, parts, split)
