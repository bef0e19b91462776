"""Image-text matching negatives: random in-batch caption swaps, and hard negatives from ITC
similarities (ALBEF-style), as index vectors "row i takes the text of row j". The objectives
(`vlbert.engine.objectives`) pair them with the batch's cached unimodal states."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def _codes(values: Sequence[object]) -> Tensor:
    """Equal values -> equal integer codes: [B] long."""
    table: dict[object, int] = {}
    return torch.tensor([table.setdefault(v, len(table)) for v in values], dtype=torch.long)


def mismatch_mask(image_ids: Sequence[str], texts: Sequence[str] | None = None) -> Tensor:
    """[B, B] bool: True where row j's text is a valid negative for row i's image (another image,
    and, if ``texts`` is given, another text: identical captions of two images are not negatives)."""
    images = _codes(image_ids)
    valid = images[:, None] != images[None, :]  # [B, B]
    if texts is not None:
        codes = _codes(texts)
        valid &= codes[:, None] != codes[None, :]
    return valid


def random_negative_indices(
    image_ids: Sequence[str], texts: Sequence[str], prob: float, generator: torch.Generator
) -> Tensor:
    """[B] long: row i keeps its own text (index i) or, with probability ``prob``, takes the text of
    a uniformly chosen row that is a valid negative (see `mismatch_mask`); rows without any valid
    negative keep their text."""
    valid = mismatch_mask(image_ids, texts)  # [B, B]
    size = valid.shape[0]
    noise = torch.rand(size, size, generator=generator).masked_fill(~valid, -1.0)  # [B, B]
    swap = (torch.rand(size, generator=generator) < prob) & valid.any(dim=1)  # [B]
    return torch.where(swap, noise.argmax(dim=1), torch.arange(size))


def hard_negative_indices(
    text_embed: Tensor,
    image_embed: Tensor,
    image_ids: Sequence[str] | None = None,
    texts: Sequence[str] | None = None,
    sample: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """For each image, the most similar text that does not match it, from ITC embeddings
    text_embed [B, E] and image_embed [B, E] (row i of each is a matching pair) -> [B] long text
    row per image, -1 where the batch holds no valid negative. Texts of the same image id (and
    identical texts) are excluded. ``sample`` draws from softmax(similarity) instead of argmax, as
    ALBEF does. For the hardest image per text, swap the arguments."""
    size = image_embed.shape[0]
    sim = image_embed.float() @ text_embed.float().t()  # [B_img, B_txt]
    valid = ~torch.eye(size, dtype=torch.bool, device=sim.device)  # [B, B]
    if image_ids is not None:
        valid &= mismatch_mask(image_ids, texts).to(sim.device)
    sim = sim.masked_fill(~valid, float("-inf"))
    has = valid.any(dim=1)  # [B]
    if sample:
        probs = torch.softmax(sim[has], dim=1)  # [B', B]
        chosen = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        picks = torch.full((size,), -1, dtype=torch.long, device=sim.device)
        picks[has] = chosen
        return picks
    return torch.where(has, sim.argmax(dim=1), torch.full_like(has, -1, dtype=torch.long))

