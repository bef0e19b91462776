"""Caption decoding, greedy and beam search, for `VLBertForCaptioning`.

Under the sequence-to-sequence mask the image stream sees only the first text token, so the image
is encoded once and re-used at every step; each step re-runs the (short) text prefix.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vlbert.models.outputs import ImageStates
from vlbert.models.tasks import VLBertForCaptioning


def _next_logprobs(model: VLBertForCaptioning, prefix: Tensor, image: ImageStates) -> Tensor:
    # prefix [n, t], image states for n rows -> log-probabilities of the next token [n, V]
    text = model.vlbert.encode_text(prefix, causal=True)
    hidden = model.vlbert.fuse(text, image).text_hidden[:, -1]  # [n, Dt]: only the last position
    return model.mlm_head(hidden).float().log_softmax(-1)


@torch.inference_mode()
def generate(
    model: VLBertForCaptioning,
    image_inputs: dict[str, Tensor],
    bos_id: int,
    eos_id: int,
    max_length: int = 20,
    num_beams: int = 1,
    banned_ids: tuple[int, ...] = (),
) -> list[list[int]]:
    """Token ids of one caption per image (without BOS/EOS). `image_inputs` are keyword arguments
    of `encode_image`; `banned_ids` (e.g. [PAD], [MASK]) are never produced."""
    image = model.vlbert.encode_image(**image_inputs)
    batch = image.hidden.shape[0]
    device = image.hidden.device
    beams = num_beams
    image = image.select(torch.arange(batch, device=device).repeat_interleave(beams))
    seqs = torch.full((batch * beams, 1), bos_id, dtype=torch.long, device=device)  # [B*K, 1]
    scores = torch.zeros(batch, beams, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    done = torch.zeros(batch * beams, dtype=torch.bool, device=device)
    for _ in range(max_length):
        logp = _next_logprobs(model, seqs, image)  # [B*K, V]
        if banned_ids:
            logp[:, list(banned_ids)] = float("-inf")
        logp[done] = float("-inf")
        logp[done, eos_id] = 0.0  # finished beams only extend with EOS at no cost
        vocab = logp.shape[-1]
        total = (scores.view(-1, 1) + logp).view(batch, beams * vocab)  # [B, K*V]
        scores, flat = total.topk(beams, dim=1)  # [B, K]
        origin = (flat // vocab) + torch.arange(batch, device=device)[:, None] * beams  # [B, K]
        token = (flat % vocab).view(-1, 1)
        seqs = torch.cat([seqs[origin.view(-1)], token], dim=1)
        done = done[origin.view(-1)] | (token.view(-1) == eos_id)
        if done.all():
            break
    best = seqs.view(batch, beams, -1)[:, 0, 1:]  # topk keeps beams sorted: beam 0 is the best
    return [_until_eos(row.tolist(), eos_id) for row in best]


def ended(ids: list[int], max_length: int) -> bool:
    """Whether a caption `generate` returned ended with the end token: one that used all
    `max_length` steps was cut off by the limit."""
    return len(ids) < max_length


def _until_eos(ids: list[int], eos_id: int) -> list[int]:
    return ids[: ids.index(eos_id)] if eos_id in ids else ids
