"""Every recipe in configs/ loads with the run-config loader (which checks every key, type and
choice) and builds the model it names, at full size on the meta device (no weights allocated)."""

from pathlib import Path

import pytest
import torch

import vlbert
from vlbert.models.tasks import TASK_MODELS
from vlbert.runconfig import load_run_config
from vlbert.tasks import task_named

CONFIGS = sorted((Path(__file__).parent.parent / "configs").rglob("*.yaml"))


def test_there_are_recipes():
    assert {p.name for p in CONFIGS} >= {"pretrain_coco.yaml", "pretrain_conceptual_captions.yaml", "vqa_vqav2.yaml",
                                         "retrieval_coco.yaml", "retrieval_flickr30k.yaml", "caption_coco.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_recipe_loads_and_builds_its_model(path):
    cfg = load_run_config(path)
    assert cfg.task == task_named(path.stem.split("_")[0])  # the file name says the task
    assert cfg.train.max_steps > 0 and cfg.data.root and cfg.out_dir
    with torch.device("meta"):
        model = vlbert.create_model(cfg.model.name, task=cfg.task, **cfg.model.overrides)
    assert type(model) is TASK_MODELS[cfg.task]
    if cfg.task == "vqa":  # the answer head and the answer vocabulary agree
        assert model.config.num_answers == cfg.data.num_answers
    assert cfg.data.max_length <= model.config.max_position_embeddings
