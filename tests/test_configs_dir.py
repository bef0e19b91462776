"""Every recipe in configs/ parses into a valid run configuration."""

from pathlib import Path

import pytest

from vlbert.runconfig import load_run_config

CONFIGS = sorted((Path(__file__).parent.parent / "configs").rglob("*.yaml"))


def test_there_are_recipes():
    assert len(CONFIGS) >= 6


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_recipe_parses(path):
    cfg = load_run_config(path)
    assert cfg.task in ("pretraining", "vqa", "retrieval", "captioning")
    assert cfg.train.max_steps > 0
