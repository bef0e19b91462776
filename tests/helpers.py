"""Helpers shared by the tests, imported as `from tests.helpers import ...` (fixtures stay in
conftest.py; the shard writers and readers are tests/shard_factory.py and tests/shard_reading.py,
imported the same way)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import torch

from vlbert.data.pipeline.batch import Batch
from vlbert.losses import PreTrainingTargets, pretraining_loss

ROOT = Path(__file__).resolve().parents[1]  # the repository
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```", re.S | re.M)


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


def pretraining_step_grads(model, inputs, masked):
    out = model(**inputs, masked_regions=masked)
    B, L = inputs["input_ids"].shape
    mlm_labels = torch.full((B, L), -100)
    mlm_labels[:, 1:3] = inputs["input_ids"][:, 1:3]
    N = masked.shape[1]
    targets = PreTrainingTargets(
        mlm_labels=mlm_labels,
        region_labels=masked,
        region_targets=torch.softmax(torch.randn(B, N, model.config.v_target_size), -1),
        itm_labels=torch.tensor([1, 0] * (B // 2) + [1] * (B % 2)),
    )
    weights = dict(mlm=1.0, mrm=1.0, itm=1.0, itc=1.0)
    loss = pretraining_loss(out, targets, weights, model.config.resolved_region_objective)
    assert set(loss.parts) == {"mlm", "mrm", "itm", "itc"}
    loss.total.backward()
    return [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]


def pretrain_batch(seed=0, batch=4):
    x = make_inputs(batch=batch, length=8, regions=5, seed=seed)
    g = torch.Generator().manual_seed(seed)
    labels = torch.full_like(x.input_ids, -100)
    labels[:, 2:4] = x.input_ids[:, 2:4]
    ids = x.input_ids.clone()
    ids[:, 2:4] = 103  # [MASK]
    mrm = torch.zeros(batch, 5, dtype=torch.bool)
    mrm[:, 1] = True
    return Batch(
        input_ids=ids, attention_mask=x.attention_mask, region_features=x.region_features,
        region_boxes=x.region_boxes, region_mask=x.region_mask, mlm_labels=labels, masked_regions=mrm,
        mrm_labels=mrm, region_class_probs=torch.softmax(torch.randn(batch, 5, 10, generator=g) * 3, -1),
    )


def vqa_batch(seed=0, batch=4):
    x = make_inputs(batch=batch, length=8, regions=5, seed=seed)
    scores = torch.zeros(batch, 10)
    scores[torch.arange(batch), torch.arange(batch) % 10] = 1.0
    return Batch(input_ids=x.input_ids, attention_mask=x.attention_mask, region_features=x.region_features,
                 region_boxes=x.region_boxes, region_mask=x.region_mask, answer_scores=scores)


def shell_commands(text: str) -> list[list[str]]:
    """Every command of every shell block in `text`: continuation lines joined, comments dropped,
    `a && b` split in two, words split as a shell would (no variables or globbing)."""
    commands = []
    for block in SHELL_BLOCK.findall(text):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            words = shlex.split(line, comments=True)
            while "&&" in words:
                commands.append(words[: words.index("&&")])
                words = words[words.index("&&") + 1:]
            if words:
                commands.append(words)
    return commands
