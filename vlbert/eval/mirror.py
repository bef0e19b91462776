"""Does a model read the boxes? Its ITM head scores each image's full scene description against
the description of the same scene mirrored left <-> right, or top <-> bottom (`mirror_description`):
same objects, shapes and colours, other places. A model that reads positions prefers the true one; a model
blind to the boxes cannot tell them apart (about half, by chance)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from vlbert.data.pipeline.batch import Batch
from vlbert.data.pipeline.tokenize import TextEncoder
from vlbert.data.sources.sort_of_clevr.captions import mirror_description
from vlbert.eval.device import model_device


@dataclass
class MirrorCheck:
    preferred: float  # share of images whose true description scores above the mirrored one
    images: int  # images checked (those whose two descriptions differ)
    margin: float  # mean ITM log-odds of the true minus the mirrored description

    def as_dict(self, name: str = "itm_mirror") -> dict[str, float]:
        return {f"{name}_preferred": self.preferred, f"{name}_images": float(self.images), f"{name}_margin": self.margin}


def _log_odds(logits: Tensor) -> Tensor:
    return (logits[:, 1] - logits[:, 0]).float()  # [B]


def _encode(texts: list[str], encoder: TextEncoder, device: torch.device) -> tuple[Tensor, Tensor]:
    """Token ids [B, L] and mask [B, L], tokenised as the loading pipeline does (no masking)."""
    ids = [encoder(text).ids for text in texts]
    width = max(len(row) for row in ids)
    input_ids = torch.zeros(len(ids), width, dtype=torch.long)
    for row, tokens in enumerate(ids):
        input_ids[row, : len(tokens)] = torch.tensor(tokens)
    return input_ids.to(device), (input_ids != 0).to(device)


def mirror_check(model: nn.Module, batches: Iterable[Batch], tokenizer: PreTrainedTokenizerBase,
                 max_length: int, limit: int | None = None, axis: str = "horizontal") -> MirrorCheck:
    """`mirror_checks` along one axis."""
    return mirror_checks(model, batches, tokenizer, max_length, limit, (axis,))[axis]


@torch.inference_mode()
def mirror_checks(model: nn.Module, batches: Iterable[Batch], tokenizer: PreTrainedTokenizerBase,
                  max_length: int, limit: int | None = None,
                  axes: tuple[str, ...] = ("horizontal", "vertical")) -> dict[str, MirrorCheck]:
    """ITM of each batch row's text (its image's full description: read the split with one
    caption per image, the first) against the description mirrored along each of `axes`
    ("horizontal": left <-> right, "vertical": top <-> bottom), on the row's own image; one pass
    over the batches, each image and true description encoded once for every axis. Per axis,
    rows whose text is no full description, or reads the same mirrored, are left out, and at most
    `limit` rows are scored. Both texts are tokenised here, so batches may come masked (a
    pre-training loader): only `texts` and the image inputs are read."""
    device, encoder = model_device(model), TextEncoder(tokenizer, max_length)
    margins: dict[str, list[Tensor]] = {axis: [] for axis in axes}
    checked = dict.fromkeys(axes, 0)  # rows scored so far, per axis
    for batch in batches:
        mirrored = {axis: [mirror_description(text, axis) for text in batch.texts] for axis in axes}
        rows = {axis: [i for i, (text, other) in enumerate(zip(batch.texts, mirrored[axis])) if other not in (None, text)]
                for axis in axes}
        if limit is not None:
            rows = {axis: r[: max(0, limit - checked[axis])] for axis, r in rows.items()}
        scored = sorted(set().union(*rows.values()))  # rows any axis scores
        if not scored:
            continue
        inputs = {k: v[torch.tensor(scored)].to(device) for k, v in batch.image_inputs().items() if v is not None}
        image = model.vlbert.encode_image(**inputs)
        true = model.vlbert.encode_text(*_encode([batch.texts[i] for i in scored], encoder, device))
        true_odds = _log_odds(model.match_logits(true, image))  # [S]
        for axis, axis_rows in rows.items():
            if not axis_rows:
                continue
            at = torch.tensor([scored.index(i) for i in axis_rows], device=device)
            other = model.vlbert.encode_text(*_encode([mirrored[axis][i] for i in axis_rows], encoder, device))  # type: ignore[misc]
            margins[axis].append(true_odds[at] - _log_odds(model.match_logits(other, image.select(at))))
            checked[axis] += len(axis_rows)
        if limit is not None and all(count >= limit for count in checked.values()):
            break
    return {axis: _summary(margins[axis]) for axis in axes}


def _summary(margins: list[Tensor]) -> MirrorCheck:
    if not margins:
        return MirrorCheck(float("nan"), 0, float("nan"))
    scores = torch.cat(margins)  # [N]
    return MirrorCheck((scores > 0).float().mean().item(), len(scores), scores.mean().item())
