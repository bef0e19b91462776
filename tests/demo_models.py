"""Tiny saved models for the demo's tests: a VQA, a retrieval and a captioning model over the
built-in data's detector regions (363-d crops, 12 classes), and a ViT VQA model, built from the
`tiny` presets with seeded weights (untrained: the tests check the plumbing, not the answers)."""

from __future__ import annotations

from pathlib import Path

import torch

import vlbert
from vlbert.data.pipeline.answers import AnswerVocab
from vlbert.data.pipeline.tokenize import build_wordpiece_tokenizer
from vlbert.data.sources.sort_of_clevr.captions import describe_scene
from vlbert.data.sources.sort_of_clevr.scenes import ANSWERS, render_scene, sample_scene
from vlbert.data.sources.sort_of_clevr.scenes import image_rng as scene_rng
from vlbert.demo.service import question_templates
from vlbert.eval.saved import RunParts, save_model_dir

REGIONS = dict(v_feature_size=363, v_target_size=12)  # what the Sort-of-CLEVR detector gives


def scene_png(path: Path, index: int = 0) -> Path:
    render_scene(sample_scene(scene_rng(0, "test", index))).save(path)
    return path


def save_tiny_models(root: Path) -> dict[str, Path]:
    """Model directories by name: vqa, retrieval, captioning, pretraining (region models), vqa-vit."""
    texts = [*question_templates(), *(describe_scene(sample_scene(scene_rng(0, "train", i))) for i in range(20))]
    tokenizer = build_wordpiece_tokenizer(texts, 300, root / "tokenizer")
    answers = AnswerVocab.build([[a] for a in ANSWERS])
    made = {}
    kinds = [("vqa", "tiny", "vqa", REGIONS), ("retrieval", "tiny", "retrieval", REGIONS),
             ("captioning", "tiny", "captioning", REGIONS), ("vqa-vit", "tiny-vit", "vqa", {}),
             ("pretraining", "tiny", "pretraining", REGIONS)]
    for name, preset, task, extra in kinds:
        torch.manual_seed(0)
        model = vlbert.create_model(preset, task=task, vocab_size=len(tokenizer), num_answers=len(answers), **extra)
        save_model_dir(RunParts(model, tokenizer, answers if task == "vqa" else None), root / name)
        made[name] = root / name
    return made
