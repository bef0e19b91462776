"""Where a model's weights are, and moving a batch's inputs there."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def to_device(inputs: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in inputs.items()}
