"""Fine-tuning strategies (`train.finetune`): freezing by part, gradual unfreezing, layer-wise
learning-rate decay, parameter-efficient adapters (peft), adversarial training and distillation.

`FinetunePlan` applies the configuration to a model: it decides which parameters ever train, runs
frozen bottom parts without gradients, gives each parameter its learning-rate scale, and unfreezes
levels from the top every `unfreeze_every` steps (a function of the step alone, so a resumed run
unfreezes exactly as an uninterrupted one). Parts and depths are defined in `vlbert.engine.layers`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vlbert.engine.layers import PARTS, bottom_chains, expand_parts, parameter_depths, part_of, qualified

logger = logging.getLogger(__name__)

PEFT_METHODS = ("none", "lora", "prompt")
DEFAULT_LORA_TARGETS = ["query", "key", "value", "v_qkv", "t_qkv"]  # self-attention and co-attention projections


@dataclass
class FinetuneConfig:
    trainable: list[str] | None = None  # parts that train (docs/finetuning.md lists them); None = all
    unfreeze_every: int = 0  # gradual unfreezing: one more level from the top trains every N steps; 0 = off
    layer_decay: float = 1.0  # layer-wise lr decay: lr x layer_decay^(depth from the top); 1 = off
    peft: str = "none"  # "none" | "lora" (peft LoRA adapters) | "prompt" (learned prefix tokens)
    lora_rank: int = 8  # LoRA rank r
    lora_alpha: float = 16.0  # LoRA scale alpha (updates are scaled by alpha / r)
    lora_dropout: float = 0.0  # dropout on the LoRA branch
    lora_targets: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))  # Linear names LoRA wraps
    prompt_tokens: int = 8  # prompt tuning: learned tokens inserted after [CLS]
    adversarial: bool = False  # VILLA-style PGD on the text and region embeddings, with a KL consistency term
    adv_steps: int = 2  # PGD ascent steps per batch
    adv_step_size: float = 1e-3  # PGD step (L2 per token)
    adv_epsilon: float = 1e-2  # perturbation bound (L2 per token)
    adv_kl_weight: float = 1.0  # weight of the KL divergence from the clean to the perturbed outputs
    teacher: str | None = None  # distillation: a fine-tuned model directory of the same task; None = off
    distill_weight: float = 0.5  # w: loss = (1 - w) task + w T^2 KL(teacher, student)
    distill_temperature: float = 1.0  # T

    def __post_init__(self) -> None:
        if self.trainable is not None:
            expand_parts(self.trainable)
        if self.peft not in PEFT_METHODS:
            raise ValueError(f"train.finetune.peft: expected one of {', '.join(PEFT_METHODS)}, got {self.peft!r}")
        if not 0.0 < self.layer_decay <= 1.0:
            raise ValueError(f"train.finetune.layer_decay: expected a value in (0, 1], got {self.layer_decay}")
        for key in ("unfreeze_every", "adv_steps"):
            if getattr(self, key) < 0:
                raise ValueError(f"train.finetune.{key}: expected >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"train.finetune.distill_weight: expected a value in [0, 1], got {self.distill_weight}")


@dataclass
class ParameterCount:
    trainable: int  # parameters that train at some point of the run (adapters included)
    total: int  # every parameter of the model as trained (adapters included)

    def line(self) -> str:
        share = 100.0 * self.trainable / max(1, self.total)
        return f"trainable parameters: {self.trainable:,} of {self.total:,} ({share:.2f}%)"


def _guard(chain: list[nn.Module], index: int) -> None:
    """Run `chain[index]` without gradients while it and every module below it are frozen
    (checked at each call, so gradual unfreezing lifts it)."""
    module, below = chain[index], chain[: index + 1]
    forward = module.forward

    @functools.wraps(forward)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        frozen = not any(p.requires_grad for m in below for p in m.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            return forward(*args, **kwargs)

    module.forward = guarded


def _start_prompt(model: nn.Module) -> None:
    """Prompt tuning: the model was built with `num_prompt_tokens` (the run sets it); its tokens
    start as the embeddings of sampled words of its (loaded) vocabulary."""
    backbone = model.vlbert if hasattr(model, "vlbert") else model
    if backbone.text_prompt is None:
        raise ValueError("train.finetune.peft=prompt: the model has no prompt tokens (build it with num_prompt_tokens)")
    backbone.text_prompt.init_from_vocabulary(model.config, backbone.embeddings.word_embeddings)


class FinetunePlan:
    """What trains, when, and at which learning-rate scale, for one model."""

    def __init__(self, model: nn.Module, cfg: FinetuneConfig) -> None:
        self.cfg = cfg
        self.peft_model = None
        if cfg.peft == "lora":
            from vlbert.engine.adapters import add_lora

            self.peft_model = add_lora(model, cfg)  # adapters in place; the rest frozen but the heads
        elif cfg.peft == "prompt":
            _start_prompt(model)
        self.depths = parameter_depths(model)
        default = {"prompt", "heads"} if cfg.peft == "prompt" else set(PARTS)
        parts = expand_parts(cfg.trainable) if cfg.trainable is not None else default
        self.params = dict(model.named_parameters())
        self.trains = {name: p.requires_grad and part_of(qualified(model, name)) in parts
                       for name, p in self.params.items()}  # fmt: skip
        for name, param in self.params.items():
            param.requires_grad_(self.trains[name])
        if cfg.unfreeze_every or not all(self.trains.values()):  # something is (or starts) frozen
            needs_input_grad = cfg.adversarial or cfg.peft == "prompt"  # something is added to the embeddings
            for chain in bottom_chains(model, embeddings_only=needs_input_grad):
                for index in range(len(chain)):
                    _guard(chain, index)
        self.count = ParameterCount(sum(p.numel() for n, p in self.params.items() if self.trains[n]),
                                    sum(p.numel() for p in self.params.values()))  # fmt: skip
        if self.count.trainable == 0:
            raise ValueError("train.finetune: nothing trains (check trainable and peft)")

    def save_model(self, model: nn.Module, directory: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """A model directory (from `state_dict` when given: a sharded model's gathered weights), or
        with LoRA the adapter alone (see `vlbert.engine.adapters`)."""
        if self.peft_model is None:
            model.save_pretrained(str(directory), state_dict=state_dict)
            return
        from vlbert.engine.adapters import save_adapter

        save_adapter(self.peft_model, directory)

    def trained_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The parameters that train in this run, by name (a prompt-tuning adapter)."""
        return {name: p.detach() for name, p in model.named_parameters() if self.trains.get(name)}

    @property
    def max_depth(self) -> int:
        return max(self.depths.values())

    def lr_scale(self, name: str) -> float:
        """`layer_decay ** depth` of parameter `name`."""
        return self.cfg.layer_decay ** self.depths[name]

    def unfrozen_depth(self, step: int) -> int:
        """Levels 0..this train at `step` (0-based optimizer step)."""
        every = self.cfg.unfreeze_every
        return self.max_depth if not every else min(self.max_depth, step // every)

    def apply_schedule(self, step: int) -> None:
        """Gradual unfreezing: before optimizer step `step`, the parameters that train then."""
        if not self.cfg.unfreeze_every:
            return
        top = self.unfrozen_depth(step)
        for name, param in self.params.items():
            param.requires_grad_(self.trains[name] and self.depths[name] <= top)
