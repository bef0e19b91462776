"""Objectives around a task objective: adversarial training in embedding space (VILLA) and
knowledge distillation from a fine-tuned teacher. Both are off by default (`train.finetune`).

The logits they compare are the task model's main output: VQA answer logits, captioning token
logits, or the ITM logits of the batch's own pairs (retrieval). KL terms are over the last
dimension (softmax over answers, vocabulary or match/no-match), averaged over the other positions.

Adversarial (Gan et al., "Large-Scale Adversarial Training for Vision-and-Language Representation
Learning", 2020): a perturbation is added to the outputs of the text embeddings and of the visual
embeddings; it starts as small Gaussian noise and takes `adv_steps` normalised gradient-ascent steps
(PGD, L2 per token, each token's perturbation kept within `adv_epsilon`) on KL(clean || perturbed).
The loss is then clean task loss + task loss on the perturbed inputs + `adv_kl_weight` x
KL(clean || perturbed), the clean distribution a fixed target. (VILLA also accumulates the
parameter gradients of every ascent step, FreeLB-style, and makes the KL symmetric; this is the
plain PGD form.)

Distillation: loss = (1 - w) task loss + w T^2 KL(softmax(teacher / T) || softmax(student / T)).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlbert.engine.finetune import FinetuneConfig
from vlbert.losses import LossOutput

StepFn = Callable[[nn.Module, Any], LossOutput]


def output_logits(out: Any) -> Tensor:
    """The main logits of a task model's output (`logits`, else `itm_logits`)."""
    return out.logits if hasattr(out, "logits") else out.itm_logits


def task_logits(model: nn.Module, batch: Any) -> Tensor:
    return output_logits(model(**batch.model_inputs()))


def kl_to(target_logits: Tensor, logits: Tensor, temperature: float = 1.0) -> Tensor:
    """KL(softmax(target / T) || softmax(logits / T)) over the last dim, averaged over the rest.
    [..., C] each -> []"""
    target = F.log_softmax(target_logits.float() / temperature, dim=-1).flatten(0, -2)  # [N, C]
    student = F.log_softmax(logits.float() / temperature, dim=-1).flatten(0, -2)
    return F.kl_div(student, target, log_target=True, reduction="batchmean")


def run_capturing_logits(step_fn: StepFn, model: nn.Module, batch: Any) -> tuple[LossOutput, Tensor]:
    """The task loss and the logits of the first forward it ran (a second forward when the
    objective does not call the model's forward, as retrieval's)."""
    seen: list[Any] = []
    handle = model.register_forward_hook(lambda module, args, out: seen.append(out))
    try:
        loss = step_fn(model, batch)
    finally:
        handle.remove()
    return loss, output_logits(seen[0]) if seen else task_logits(model, batch)


class EmbeddingNoise:
    """While active, adds `deltas["text"]` / `deltas["visual"]` to the outputs of the text and visual
    embeddings; each starts, at its first use, as Gaussian noise of scale `init` [B, N, D]."""

    def __init__(self, model: nn.Module, init: float) -> None:
        backbone = model.vlbert if hasattr(model, "vlbert") else model
        self.modules = {"text": backbone.embeddings, "visual": backbone.v_embeddings}
        self.init = init
        self.deltas: dict[str, Tensor] = {}

    def _hook(self, name: str) -> Callable[..., Tensor]:
        def add(module: nn.Module, args: Any, output: Tensor) -> Tensor:
            if name not in self.deltas:
                self.deltas[name] = (torch.randn_like(output) * self.init).requires_grad_()
            return output + self.deltas[name]

        return add

    @contextlib.contextmanager
    def active(self) -> Iterator["EmbeddingNoise"]:
        handles = [module.register_forward_hook(self._hook(name)) for name, module in self.modules.items()]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    @torch.no_grad()
    def ascend(self, grads: dict[str, Tensor | None], step: float, epsilon: float) -> None:
        """One normalised ascent step per token, then back within the epsilon ball (L2 per token)."""
        for name, grad in grads.items():
            delta = self.deltas[name]
            if grad is not None:
                delta = delta + step * grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-12)
            scale = (epsilon / delta.norm(dim=-1, keepdim=True).clamp(min=1e-12)).clamp(max=1.0)
            self.deltas[name] = (delta * scale).requires_grad_()


def adversarial_objective(step_fn: StepFn, cfg: FinetuneConfig) -> StepFn:
    """VILLA-style adversarial training around `step_fn` (see the module docstring)."""

    def step(model: nn.Module, batch: Any) -> LossOutput:
        clean, clean_logits = run_capturing_logits(step_fn, model, batch)
        target = clean_logits.detach()
        noise = EmbeddingNoise(model, cfg.adv_step_size)
        with noise.active():
            for _ in range(cfg.adv_steps):
                divergence = kl_to(target, task_logits(model, batch))
                names = list(noise.deltas)
                grads = torch.autograd.grad(divergence, [noise.deltas[n] for n in names], allow_unused=True)
                noise.ascend(dict(zip(names, grads)), cfg.adv_step_size, cfg.adv_epsilon)
            noise.deltas = {name: delta.detach() for name, delta in noise.deltas.items()}
            perturbed, logits = run_capturing_logits(step_fn, model, batch)
        kl = kl_to(target, logits)
        total = clean.total + perturbed.total + cfg.adv_kl_weight * kl
        return LossOutput(total=total, parts={**clean.parts, "adv": perturbed.total.detach(), "adv_kl": kl.detach()})

    return step


def distillation_objective(step_fn: StepFn, teacher: nn.Module, cfg: FinetuneConfig) -> StepFn:
    """Knowledge distillation from `teacher` (a frozen task model of the same task and outputs)."""
    teacher.eval().requires_grad_(False)
    weight, temperature = cfg.distill_weight, cfg.distill_temperature

    def step(model: nn.Module, batch: Any) -> LossOutput:
        task, logits = run_capturing_logits(step_fn, model, batch)
        device = logits.device
        if next(teacher.parameters()).device != device:
            teacher.to(device)
        with torch.no_grad():
            target = task_logits(teacher, batch)
        if target.shape != logits.shape:
            raise ValueError(f"train.finetune.teacher: its outputs {tuple(target.shape)} do not match the "
                             f"student's {tuple(logits.shape)} (another task, answer or token vocabulary)")
        distill = kl_to(target, logits, temperature) * temperature**2
        total = (1.0 - weight) * task.total + weight * distill
        return LossOutput(total=total, parts={**task.parts, "distill": distill.detach()})

    return step


def wrap_objective(step_fn: StepFn, cfg: FinetuneConfig, teacher: nn.Module | None = None) -> StepFn:
    """`step_fn` with the regularizers `cfg` turns on (distillation outside adversarial training)."""
    if cfg.adversarial:
        step_fn = adversarial_objective(step_fn, cfg)
    if teacher is not None:
        step_fn = distillation_objective(step_fn, teacher, cfg)
    return step_fn
