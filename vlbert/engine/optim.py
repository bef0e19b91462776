"""AdamW with separate learning rates for the (pre-trained) backbone and the (new) heads, and a
warm-up followed by linear or cosine decay."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from vlbert.engine.finetune import FinetunePlan


@dataclass
class OptimConfig:
    lr: float = 1e-4  # backbone (parameters under `vlbert.`)
    head_lr: float | None = None  # heads; None = lr
    weight_decay: float = 0.01  # AdamW; not on biases, LayerNorms and the ITC temperature
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW
    warmup_steps: int = 0  # linear warm-up from 0
    schedule: Literal["linear", "cosine", "constant"] = "linear"  # after the warm-up: decay to 0, or none


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim < 2 or "LayerNorm" in name or name.endswith(".bias") or "logit_scale" in name


def param_groups(model: nn.Module, cfg: OptimConfig, plan: FinetunePlan | None = None) -> list[dict]:
    """Backbone/heads x decay/no-decay groups. Frozen parameters are left out. With a fine-tuning
    `plan`: every parameter that trains at some point of the run (gradual unfreezing toggles them
    later; the optimizer keeps them all from the start), one group per depth with the learning rate
    scaled by `plan.lr_scale` (layer-wise decay; the heads' `head_lr` is scaled alike)."""
    groups: dict[tuple[bool, bool, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not (plan.trains[name] if plan is not None else param.requires_grad):
            continue
        is_head = not name.startswith("vlbert.") and hasattr(model, "vlbert")
        scale = plan.lr_scale(name) if plan is not None else 1.0
        groups.setdefault((is_head, _no_decay(name, param), -scale), []).append(param)
    head_lr = cfg.lr if cfg.head_lr is None else cfg.head_lr
    return [
        {"params": params, "lr": (head_lr if is_head else cfg.lr) * -neg_scale,
         "weight_decay": 0.0 if no_decay else cfg.weight_decay}
        for (is_head, no_decay, neg_scale), params in sorted(groups.items())
    ]  # fmt: skip


def _can_fuse(params: list[nn.Parameter]) -> bool:
    """torch's fused AdamW: plain floating-point tensors all on one CPU or CUDA device (sharded
    DTensor parameters keep the default implementation)."""
    devices = {p.device for p in params}
    return (len(devices) == 1 and next(iter(devices)).type in ("cpu", "cuda")
            and all(type(p.data) is torch.Tensor and p.is_floating_point() for p in params))


def build_optimizer(model: nn.Module, cfg: OptimConfig, plan: FinetunePlan | None = None) -> torch.optim.AdamW:
    """AdamW over `param_groups`, fused where torch can (one kernel per step for all parameters:
    `tools/bench.py --only-train` times it against the per-parameter loop)."""
    groups = param_groups(model, cfg, plan)
    fused = _can_fuse([p for g in groups for p in g["params"]])
    return torch.optim.AdamW(groups, betas=cfg.betas, fused=fused or None)


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the base learning rate at `step` (0-based)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"schedule must be linear, cosine or constant, got {schedule!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int) -> LambdaLR:
    lr_factor(0, cfg.warmup_steps, total_steps, cfg.schedule)  # validates the schedule name
    return LambdaLR(optimizer, lambda step: lr_factor(step, cfg.warmup_steps, total_steps, cfg.schedule))
