"""Parts and depths of a task model's parameters, for freezing, gradual unfreezing and layer-wise
learning-rate decay.

Parts (`PARTS`): `image_encoder`, `text_embeddings`, `prompt` (prompt-tuning tokens), `text_layers`,
`visual_embeddings`, `visual_layers`, `coattention`, `poolers` and `heads` (every parameter outside
the backbone), with
the groups `text` (text embeddings and layers), `visual` (visual embeddings and layers) and `all`.
A parameter's part is read from its name, so names that adapters add (`...query.lora_A...`,
`vqa_head.modules_to_save...`) keep the part of the module they sit in.

Depth counts levels from the top of the model (`block_depths`): the heads and poolers are depth 0;
then, walking down the order of computation, each stream's layers between two co-attention blocks
take one level each, counted from the top of that segment, so the two streams' layers run side by
side (the visual stream's last layer and the text stream's last layer share depth 1); a
co-attention block counts as one level of both streams, one above the higher of the two segments
that feed it; the embeddings (and the image encoder) are the deepest level, one below the lowest
layer (the prompt-tuning tokens too). For `tiny` (text layers 0-3, visual 0-1, blocks after text layers 2 and 3 and visual 0 and
1): heads and poolers 0; text 3 and visual 1: 1; co-attention 1: 2; text 2 and visual 0: 3;
co-attention 0: 4; text 1: 5; text 0: 6; embeddings: 7.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

# part -> parameter-name prefixes (a name matches the first part whose prefix it starts with)
PART_PREFIXES: dict[str, tuple[str, ...]] = {
    "image_encoder": ("vlbert.image_encoder.",),
    "text_embeddings": ("vlbert.embeddings.",),
    "prompt": ("vlbert.text_prompt.",),
    "text_layers": ("vlbert.encoder.layer.",),
    "visual_embeddings": ("vlbert.v_embeddings.",),
    "visual_layers": ("vlbert.encoder.v_layer.",),
    "coattention": ("vlbert.encoder.c_layer.",),
    "poolers": ("vlbert.t_pooler.", "vlbert.v_pooler."),
}
PARTS: tuple[str, ...] = (*PART_PREFIXES, "heads")
PART_GROUPS: dict[str, tuple[str, ...]] = {
    "text": ("text_embeddings", "text_layers"),
    "visual": ("visual_embeddings", "visual_layers"),
    "all": PARTS,
}
PART_NAMES: tuple[str, ...] = (*PARTS, *PART_GROUPS)
_LAYER = re.compile(r"^vlbert\.encoder\.(layer|v_layer|c_layer)\.(\d+)\.")


def part_of(name: str) -> str:
    """The part a parameter name belongs to ("heads" for anything outside the backbone)."""
    for part, prefixes in PART_PREFIXES.items():
        if name.startswith(prefixes):
            return part
    return "heads"


def qualified(model: nn.Module, name: str) -> str:
    """A parameter name as a task model names it (a bare backbone's names gain `vlbert.`)."""
    return name if hasattr(model, "vlbert") else f"vlbert.{name}"


def expand_parts(names: list[str]) -> set[str]:
    """Part and group names -> the set of parts; an unknown name is a ValueError listing the valid ones."""
    parts: set[str] = set()
    for name in names:
        if name not in PART_NAMES:
            raise ValueError(f"train.finetune.trainable: unknown part {name!r} (valid: {', '.join(PART_NAMES)})")
        parts.update(PART_GROUPS.get(name, (name,)))
    return parts


@dataclass
class BlockDepths:
    text: list[int]  # depth of each text layer
    visual: list[int]  # depth of each visual layer
    coattention: list[int]  # depth of each co-attention block
    embeddings: int  # depth of the embeddings and the image encoder (the deepest level)


def block_depths(t_ids: list[int], v_ids: list[int], num_text: int, num_visual: int) -> BlockDepths:
    """Depths from the top (heads and poolers = 0) as the module docstring defines them."""
    text, visual, coattention = [0] * num_text, [0] * num_visual, [0] * len(t_ids)
    t_bounds, v_bounds = [0, *t_ids, num_text], [0, *v_ids, num_visual]
    depth = 0
    for segment in reversed(range(len(t_ids) + 1)):
        t_start, t_end = t_bounds[segment], t_bounds[segment + 1]
        v_start, v_end = v_bounds[segment], v_bounds[segment + 1]
        for i in range(t_start, t_end):
            text[i] = depth + t_end - i
        for j in range(v_start, v_end):
            visual[j] = depth + v_end - j
        depth += max(t_end - t_start, v_end - v_start)
        if segment > 0:  # the co-attention block below this segment
            depth += 1
            coattention[segment - 1] = depth
    return BlockDepths(text, visual, coattention, depth + 1)


def parameter_depths(model: nn.Module) -> dict[str, int]:
    """Depth of every parameter of a task model (or backbone) by name."""
    config = model.config
    depths = block_depths(list(config.t_biattention_id), list(config.v_biattention_id),
                          config.num_hidden_layers, config.v_num_hidden_layers)
    kinds = {"layer": depths.text, "v_layer": depths.visual, "c_layer": depths.coattention}
    out = {}
    for name, _ in model.named_parameters():
        full = qualified(model, name)
        match = _LAYER.match(full)
        if match:
            out[name] = kinds[match.group(1)][int(match.group(2))]
        elif part_of(full) in ("image_encoder", "text_embeddings", "prompt", "visual_embeddings"):
            out[name] = depths.embeddings
        else:
            out[name] = 0  # poolers and heads
    return out


def bottom_chains(model: nn.Module, embeddings_only: bool) -> list[list[nn.Module]]:
    """Each stream's modules before the first co-attention block, bottom first: what may run
    without gradients while it and everything below it is frozen. `embeddings_only`: just the
    embeddings (when something is added to their output that needs a gradient)."""
    backbone = model.vlbert if hasattr(model, "vlbert") else model
    encoder = backbone.encoder
    text = [backbone.embeddings]
    visual = [backbone.image_encoder, backbone.v_embeddings]
    if not embeddings_only:
        text += list(encoder.layer[: encoder.text_start])
        visual += list(encoder.v_layer[: encoder.visual_start])
    return [text, visual]
