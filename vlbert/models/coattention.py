"""The co-attention block that joins ViLBERT's two streams.

Both streams are projected to `bi_hidden_size` with `bi_num_attention_heads` heads; image queries
attend over text keys/values and text queries over image keys/values. Each result is projected
back to its stream's width, with dropout, a residual connection and LayerNorm, and then goes
through that stream's own feed-forward block (transformers' `BertIntermediate`/`BertOutput`).

Query, key and value projections of each stream are fused into one matrix (`v_qkv`, `t_qkv`); the
checkpoint converter splits and joins them. The original's `q_dense1`/`q_dense2` weights, which
its forward never uses, are not built.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.bert.modeling_bert import BertIntermediate, BertOutput

from vlbert.config import VLBertConfig
from vlbert.models.masks import StreamMasks


class CoAttention(nn.Module):
    def __init__(self, config: VLBertConfig) -> None:
        super().__init__()
        self.num_heads = config.bi_num_attention_heads
        self.head_dim = config.bi_hidden_size // config.bi_num_attention_heads
        self.v_qkv = nn.Linear(config.v_hidden_size, 3 * config.bi_hidden_size)
        self.t_qkv = nn.Linear(config.hidden_size, 3 * config.bi_hidden_size)
        # As in the original: text-over-image probabilities use the visual dropout rate, and
        # image-over-text probabilities the text one.
        self.t_attn_dropout = config.v_attention_probs_dropout_prob
        self.v_attn_dropout = config.attention_probs_dropout_prob

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # [B, N, 3 * Dbi] -> 3 x [B, H, N, Dh]
        batch, length, _ = x.shape
        q, k, v = x.view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v

    def forward(self, visual: Tensor, text: Tensor, masks: StreamMasks) -> tuple[Tensor, Tensor]:
        # visual [B, R, Dv], text [B, L, Dt] -> ([B, R, Dbi], [B, L, Dbi])
        vq, vk, vv = self._heads(self.v_qkv(visual))  # [B, H, R, Dh]
        tq, tk, tv = self._heads(self.t_qkv(text))  # [B, H, L, Dh]
        drop_v = self.v_attn_dropout if self.training else 0.0
        drop_t = self.t_attn_dropout if self.training else 0.0
        v_ctx = F.scaled_dot_product_attention(vq, tk, tv, attn_mask=masks.visual_to_text, dropout_p=drop_v)
        t_ctx = F.scaled_dot_product_attention(tq, vk, vv, attn_mask=masks.text_to_visual, dropout_p=drop_t)
        return _merge_heads(v_ctx), _merge_heads(t_ctx)

    def attention_probs(self, visual: Tensor, text: Tensor, masks: StreamMasks) -> tuple[Tensor, Tensor]:
        """The probabilities `forward` attends with (no dropout), written out instead of fused
        into `scaled_dot_product_attention`: (image over text [B, H, R, L], text over image
        [B, H, L, R]). For inspection (`vlbert.models.attention_maps`); `forward` never calls it."""
        vq, vk, _ = self._heads(self.v_qkv(visual))  # [B, H, R, Dh]
        tq, tk, _ = self._heads(self.t_qkv(text))  # [B, H, L, Dh]
        return _probs(vq, tk, masks.visual_to_text), _probs(tq, vk, masks.text_to_visual)


def _probs(query: Tensor, key: Tensor, mask: Tensor) -> Tensor:
    # [B, H, Q, Dh] x [B, H, K, Dh], mask [B, 1, 1 or Q, K] bool -> [B, H, Q, K]
    scores = query @ key.transpose(-1, -2) * query.shape[-1] ** -0.5
    return scores.masked_fill(~mask, float("-inf")).softmax(-1)


def _merge_heads(x: Tensor) -> Tensor:
    # [B, H, N, Dh] -> [B, N, H * Dh]
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


class CrossOutput(nn.Module):
    """Project a co-attention context back to the stream's width: dense, dropout, residual, LayerNorm."""

    def __init__(self, in_size: int, out_size: int, dropout: float, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(in_size, out_size)
        self.LayerNorm = nn.LayerNorm(out_size, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, context: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(context)) + residual)


class CoAttentionLayer(GradientCheckpointingLayer):
    """One co-attention block: cross attention both ways, then each stream's feed-forward.
    `gradient_checkpointing_enable()` on the model recomputes it in the backward pass."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__()
        eps = config.layer_norm_eps
        self.attention = CoAttention(config)
        self.v_attention_output = CrossOutput(config.bi_hidden_size, config.v_hidden_size, config.v_hidden_dropout_prob, eps)
        self.t_attention_output = CrossOutput(config.bi_hidden_size, config.hidden_size, config.hidden_dropout_prob, eps)
        v_cfg, t_cfg = config.visual_bert_config(), config.text_bert_config()
        self.v_intermediate = BertIntermediate(v_cfg)
        self.v_output = BertOutput(v_cfg)
        self.t_intermediate = BertIntermediate(t_cfg)
        self.t_output = BertOutput(t_cfg)

    def forward(self, visual: Tensor, text: Tensor, masks: StreamMasks) -> tuple[Tensor, Tensor]:
        # visual [B, R, Dv], text [B, L, Dt] -> the same shapes
        v_ctx, t_ctx = self.attention(visual, text, masks)
        visual = self.v_attention_output(v_ctx, visual)
        text = self.t_attention_output(t_ctx, text)
        visual = self.v_output(self.v_intermediate(visual), visual)
        text = self.t_output(self.t_intermediate(text), text)
        return visual, text
