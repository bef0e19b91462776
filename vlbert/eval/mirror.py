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


@torch.inference_mode()
def mirror_check(model: nn.Module, batches: Iterable[Batch], tokenizer: PreTrainedTokenizerBase,
                 max_length: int, limit: int | None = None, axis: str = "horizontal") -> MirrorCheck:
    """ITM of each batch row's text (its image's full description: read the split with one
    caption per image, the first) against the description mirrored along `axis` ("horizontal":
    left <-> right, "vertical": top <-> bottom), on the row's own image.
    Rows whose text is no full description, or reads the same mirrored, are left out. Both texts
    are tokenised here, so batches may come masked (a pre-training loader): only `texts` and the
    image inputs are read."""
    device, encoder = model_device(model), TextEncoder(tokenizer, max_length)
    margins: list[Tensor] = []
    checked = 0  # rows scored so far
    for batch in batches:
        mirrored = [mirror_description(text, axis) for text in batch.texts]
        rows = [i for i, (text, other) in enumerate(zip(batch.texts, mirrored)) if other not in (None, text)]
        if limit is not None:
            rows = rows[: max(0, limit - checked)]
        if not rows:
            continue
        index = torch.tensor(rows)
        inputs = {k: v[index].to(device) for k, v in batch.image_inputs().items() if v is not None}
        image = model.vlbert.encode_image(**inputs)
        true = model.vlbert.encode_text(*_encode([batch.texts[i] for i in rows], encoder, device))
        other = model.vlbert.encode_text(*_encode([mirrored[i] for i in rows], encoder, device))  # type: ignore[misc]
        margins.append(_log_odds(model.match_logits(true, image)) - _log_odds(model.match_logits(other, image)))
        checked += len(rows)
        if limit is not None and checked >= limit:
            break
    if not margins:
        return MirrorCheck(float("nan"), 0, float("nan"))
    scores = torch.cat(margins)  # [N]
    return MirrorCheck((scores > 0).float().mean().item(), len(scores), scores.mean().item())
