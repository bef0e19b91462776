"""Prompt tuning on the text stream: `num_prompt_tokens` learned embeddings inserted after [CLS]
(and after the 12-in-1 task token, when there is one), before the first text layer.

peft's `PromptTuningConfig` and `PromptEmbedding` hold and initialise the tokens; peft's
`PeftModel` wrapper cannot insert them itself, because it feeds virtual tokens through an
`inputs_embeds` argument that the two-stream model does not take (its text and image inputs meet
in the co-attention, not in one embedding sequence). So the backbone calls this module between
its text embeddings and its first text layer. The tokens have no position or token-type embedding;
the text mask gains P ones; per-token heads (MLM, captioning) drop the P positions again
(`vlbert.models.task_tokens.drop_task_token`), so their logits line up with `input_ids`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vlbert.config import VLBertConfig


def _prompt_embedding(config: VLBertConfig, word_embeddings: nn.Embedding | None) -> nn.Module:
    """peft's `PromptEmbedding`: tokens sampled from the vocabulary's embeddings, or random."""
    try:
        from peft import PromptEmbedding, PromptTuningConfig
    except ImportError:
        raise ImportError("prompt tuning (num_prompt_tokens) needs the peft library: pip install 'vlbert[peft]'") from None
    init = "SAMPLE_VOCAB" if word_embeddings is not None else "RANDOM"
    peft_config = PromptTuningConfig(num_virtual_tokens=config.num_prompt_tokens, token_dim=config.hidden_size,
                                     num_transformer_submodules=1, prompt_tuning_init=init)  # fmt: skip
    return PromptEmbedding(peft_config, word_embeddings)


class TextPrompt(nn.Module):
    def __init__(self, config: VLBertConfig) -> None:
        super().__init__()
        self.num_tokens = config.num_prompt_tokens
        self.after = 1 + int(config.task_specific_tokens)  # [CLS] (and the task token) stay first
        self.prompt = _prompt_embedding(config, None)

    @torch.no_grad()
    def init_from_vocabulary(self, config: VLBertConfig, word_embeddings: nn.Embedding) -> None:
        """Restart the tokens as embeddings of randomly sampled words (peft's SAMPLE_VOCAB)."""
        sampled = _prompt_embedding(config, word_embeddings)
        self.prompt.embedding.weight.copy_(sampled.embedding.weight)

    def forward(self, hidden: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        # hidden [B, L, Dt], mask [B, L] -> [B, L + P, Dt], [B, L + P]
        batch = hidden.shape[0]
        index = torch.arange(self.num_tokens, device=hidden.device).expand(batch, -1)  # [B, P]
        tokens = self.prompt(index).to(hidden.dtype)  # [B, P, Dt]
        hidden = torch.cat([hidden[:, : self.after], tokens, hidden[:, self.after :]], dim=1)
        ones = mask.new_ones(batch, self.num_tokens)
        return hidden, torch.cat([mask[:, : self.after], ones, mask[:, self.after :]], dim=1)
