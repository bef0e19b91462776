"""Masked language modelling and masked region modelling targets (BERT / ViLBERT recipes).

Pure functions: they take a `torch.Generator` (or an int seed), never touch the global RNG and
return new tensors. The model's IMG token is not part of the region tensors here (the model
prepends it after masking), so it is never masked.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

IGNORE_INDEX = -100  # label of positions that are not predicted (cross-entropy's ignore_index)
MASK_FRACTION = 0.8  # of the selected tokens: replaced by [MASK]
RANDOM_FRACTION = 0.1  # ... by a random token; the remaining 0.1 stay unchanged


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts (seed, epoch, key, ...), stable across processes
    (unlike `hash`)."""
    digest = hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def as_generator(generator: torch.Generator | int) -> torch.Generator:
    """A generator as given, or a new CPU generator seeded with the int."""
    if isinstance(generator, torch.Generator):
        return generator
    return torch.Generator().manual_seed(int(generator))


def _uniform(shape: torch.Size, generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def mask_tokens(
    input_ids: Tensor,
    attention_mask: Tensor,
    special_mask: Tensor,
    vocab_size: int,
    mask_token_id: int,
    prob: float = 0.15,
    generator: torch.Generator | int = 0,
    focus_mask: Tensor | None = None,
    focus_prob: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """BERT's MLM corruption: each real, non-special token is selected with probability ``prob``
    (tokens where ``focus_mask`` [B, L] bool is True: with ``focus_prob``, when higher); of those
    80 % become ``mask_token_id``, 10 % a uniformly random id in [0, vocab_size) and 10 % stay as
    they are.

    input_ids [B, L] long, attention_mask [B, L] (padding = 0/False), special_mask [B, L] bool
    (True for [CLS], [SEP], ...) -> (masked_ids [B, L], labels [B, L] with -100 where not selected).
    """
    gen = as_generator(generator)
    eligible = attention_mask.bool() & ~special_mask.bool()  # [B, L]
    chance = torch.full(input_ids.shape, prob, device=input_ids.device)  # [B, L]
    if focus_mask is not None:
        chance = torch.where(focus_mask.bool(), max(prob, focus_prob), chance)
    selected = (_uniform(input_ids.shape, gen, input_ids.device) < chance) & eligible  # [B, L]
    labels = input_ids.masked_fill(~selected, IGNORE_INDEX)  # [B, L]
    action = _uniform(input_ids.shape, gen, input_ids.device)  # [B, L]
    to_mask = selected & (action < MASK_FRACTION)
    to_random = selected & (action >= MASK_FRACTION) & (action < MASK_FRACTION + RANDOM_FRACTION)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=gen, device=gen.device).to(input_ids)
    masked = input_ids.masked_fill(to_mask, mask_token_id)  # [B, L]
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels


def mask_regions(
    region_mask: Tensor,
    prob: float = 0.15,
    zero_prob: float = 0.9,
    generator: torch.Generator | int = 0,
) -> tuple[Tensor, Tensor]:
    """ViLBERT's masked region modelling: each real region is a target with probability ``prob``;
    of the targets, a fraction ``zero_prob`` has its features zeroed by the model (the rest are
    left visible, as BERT's 10 % unchanged tokens).

    region_mask [B, N] bool (padding = False) -> (masked_regions [B, N] bool: features to zero,
    mrm_labels [B, N] bool: regions to predict). masked_regions is a subset of mrm_labels.
    """
    gen = as_generator(generator)
    targets = (_uniform(region_mask.shape, gen, region_mask.device) < prob) & region_mask.bool()  # [B, N]
    zeroed = (_uniform(region_mask.shape, gen, region_mask.device) < zero_prob) & targets  # [B, N]
    return zeroed, targets
