"""One pre-training step (forward, backward, AdamW) of `vilbert-base` against transformers'
`LxmertForPreTraining` at the same width, depth and sequence lengths, and its FLOP utilisation.

Both do the same work per step: masked language modelling, a classification of the (masked)
regions over the detector's 1601 classes, and image-text matching of the batch's pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from vlbert.data.pipeline.masking import IGNORE_INDEX
from vlbert.engine.optim import OptimConfig, build_optimizer
from vlbert.factory import create_config, create_model
from vlbert.losses import PreTrainingTargets, pretraining_loss


@dataclass
class StepInputs:
    input_ids: Tensor  # [B, L]
    mlm_labels: Tensor  # [B, L], -100 where not predicted
    features: Tensor  # [B, R, 2048]
    boxes: Tensor  # [B, R, 4] normalised x1 y1 x2 y2
    region_labels: Tensor  # [B, R] bool, the regions whose class is predicted
    class_probs: Tensor  # [B, R, 1601]
    matched: Tensor  # [B] long, 1 = the caption belongs to the image


def make_inputs(preset: str, batch: int, tokens: int, regions: int, device: torch.device, seed: int = 0) -> StepInputs:
    config = create_config(preset)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, config.vocab_size, (batch, tokens), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    picked = torch.rand(batch, tokens, generator=g) < 0.15
    xy = torch.rand(batch, regions, 2, generator=g) * 0.6
    inputs = StepInputs(
        input_ids=ids, mlm_labels=torch.where(picked, ids, IGNORE_INDEX),
        features=torch.rand(batch, regions, config.v_feature_size, generator=g),
        boxes=torch.cat([xy, xy + 0.3], -1), region_labels=torch.rand(batch, regions, generator=g) < 0.15,
        class_probs=torch.softmax(torch.randn(batch, regions, config.v_target_size, generator=g), -1),
        matched=torch.randint(0, 2, (batch,), generator=g),
    )
    return StepInputs(**{k: v.to(device) for k, v in vars(inputs).items()})


def vlbert_step(preset: str, device: torch.device, inputs: StepInputs, autocast: torch.dtype | None,
                mlm_scoring: str = "masked") -> tuple[nn.Module, Callable[[], Tensor]]:
    """vlbert's pre-training step as `vlbert pretrain` runs it: the MLM vocabulary scored at the
    masked tokens only (`mlm_scoring="masked"`), or at every token as the original does ("all")."""
    if mlm_scoring not in ("masked", "all"):
        raise ValueError(f"mlm_scoring must be 'masked' or 'all', got {mlm_scoring!r}")
    model = create_model(preset, task="pretraining").to(device).train()
    optimizer = build_optimizer(model, OptimConfig(lr=1e-5))  # vlbert's own: fused AdamW where torch has it
    targets = PreTrainingTargets(mlm_labels=inputs.mlm_labels, region_labels=inputs.region_labels,
                                 region_targets=inputs.class_probs, itm_labels=inputs.matched)
    mask = torch.ones(inputs.input_ids.shape, dtype=torch.bool, device=device)

    def step() -> Tensor:
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            text, image = model.vlbert.encode_pair(input_ids=inputs.input_ids, attention_mask=mask,
                                                   region_features=inputs.features, region_boxes=inputs.boxes)
            scored = inputs.mlm_labels != IGNORE_INDEX if mlm_scoring == "masked" else None  # [B, L]
            out = model.forward_states(text, image, mlm_positions=scored)
            loss = pretraining_loss(out, targets, {"mlm": 1.0, "mrm": 1.0, "itm": 1.0}, "kl").total
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return model, step


def lxmert_config(preset: str) -> "transformers.LxmertConfig":  # noqa: F821
    """LXMERT at the preset's text size (for vilbert-base: 768 wide, 12 heads, FFN 3072): the text
    layers before the first co-attention block as language layers, one cross-modality layer per
    co-attention block (cross attention both ways, then self attention and FFN in both streams:
    the counterpart of a co-attention block with a text and a visual layer), and one
    object-relationship layer. What is left different is ViLBERT's separately sized visual stream
    (1024 wide, FFN 1024 in vilbert-base)."""
    from transformers import LxmertConfig

    ours = create_config(preset)
    return LxmertConfig(
        vocab_size=ours.vocab_size, hidden_size=ours.hidden_size, num_attention_heads=ours.num_attention_heads,
        intermediate_size=ours.intermediate_size, l_layers=ours.t_biattention_id[0],
        x_layers=len(ours.t_biattention_id), r_layers=1, visual_feat_dim=ours.v_feature_size, visual_pos_dim=4,
        num_object_labels=ours.v_target_size, task_qa=False, visual_attr_loss=False, visual_feat_loss=False,
        task_obj_predict=True, task_mask_lm=True, task_matched=True,
    )


def lxmert_step(preset: str, device: torch.device, inputs: StepInputs,
                autocast: torch.dtype | None) -> tuple[nn.Module, Callable[[], Tensor]]:
    from transformers import LxmertForPreTraining

    model = LxmertForPreTraining(lxmert_config(preset)).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    obj = {"obj": (inputs.class_probs.argmax(-1), inputs.region_labels.float())}

    def step() -> Tensor:
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            loss = model(input_ids=inputs.input_ids, visual_feats=inputs.features, visual_pos=inputs.boxes,
                         labels=inputs.mlm_labels, obj_labels=obj, matched_label=inputs.matched).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return model, step


def count_flops(step: Callable[[], Tensor]) -> int:
    """FLOPs of one call (matrix products and attention; element-wise work is not counted)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
