"""ViLBERT's computation written out as plain functions over the ORIGINAL checkpoint key names.

This is an independent statement of the paper's released model (vilbert-multi-task,
`BertForMultiModalPreTraining`), used to check the converter: a state dict in the original
layout, run through these functions, must give what vlbert gives after conversion. It uses
additive -10000 masks and explicit softmax attention as the original does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-12


def _lin(sd: dict[str, Tensor], name: str, x: Tensor) -> Tensor:
    return F.linear(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"))


def _ln(sd: dict[str, Tensor], name: str, x: Tensor) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], EPS)


def _attend(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor, heads: int) -> Tensor:
    # q [B, Q, D], k/v [B, K, D], key_mask [B, K] (1 = real) -> [B, Q, D]
    B, Q, D = q.shape
    split = lambda x: x.view(B, x.shape[1], heads, D // heads).transpose(1, 2)  # noqa: E731
    scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(D // heads)
    scores = scores + (1.0 - key_mask[:, None, None, :].float()) * -10000.0
    return (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(B, Q, D)


def _ffn(sd: dict[str, Tensor], inter: str, out: str, x: Tensor) -> Tensor:
    return _ln(sd, f"{out}.LayerNorm", _lin(sd, f"{out}.dense", F.gelu(_lin(sd, f"{inter}.dense", x))) + x)


def _layer(sd: dict[str, Tensor], p: str, x: Tensor, mask: Tensor, heads: int) -> Tensor:
    ctx = _attend(_lin(sd, f"{p}.attention.self.query", x), _lin(sd, f"{p}.attention.self.key", x),
                  _lin(sd, f"{p}.attention.self.value", x), mask, heads)
    x = _ln(sd, f"{p}.attention.output.LayerNorm", _lin(sd, f"{p}.attention.output.dense", ctx) + x)
    return _ffn(sd, f"{p}.intermediate", f"{p}.output", x)


def _coattention(sd, p, v, vmask, t, tmask, heads):
    b = f"{p}.biattention"
    # "1" = the visual side, "2" = the text side, as in the original BertBiAttention
    t_ctx = _attend(_lin(sd, f"{b}.query2", t), _lin(sd, f"{b}.key1", v), _lin(sd, f"{b}.value1", v), vmask, heads)
    v_ctx = _attend(_lin(sd, f"{b}.query1", v), _lin(sd, f"{b}.key2", t), _lin(sd, f"{b}.value2", t), tmask, heads)
    v = _ln(sd, f"{p}.biOutput.LayerNorm1", _lin(sd, f"{p}.biOutput.dense1", v_ctx) + v)
    t = _ln(sd, f"{p}.biOutput.LayerNorm2", _lin(sd, f"{p}.biOutput.dense2", t_ctx) + t)
    return _ffn(sd, f"{p}.v_intermediate", f"{p}.v_output", v), _ffn(sd, f"{p}.t_intermediate", f"{p}.t_output", t)


def original_backbone(sd, cfg, ids, tmask, feats, locs, vmask, task_ids=None):
    """The original `BertModel`: ids/tmask [B, L]; feats [B, R, Df] and locs [B, R, 5] with the IMG
    token already first; task_ids [B] (models trained with `--task_specific_tokens`) or None.
    Returns (text states [B, L (+1), Dt], visual states [B, R, Dv], fused pooled vector [B, Dbi])."""
    pos = torch.arange(ids.shape[1])
    t = sd["bert.embeddings.word_embeddings.weight"][ids] + sd["bert.embeddings.position_embeddings.weight"][pos]
    t = t + sd["bert.embeddings.token_type_embeddings.weight"][0]
    if task_ids is not None:
        # BertEmbeddings.forward: the task embedding goes in after the first token's summed
        # word + position + type embedding, before the LayerNorm; BertModel.forward extends the
        # text mask with a 1 at the front.
        task = sd["bert.embeddings.task_embeddings.weight"][task_ids][:, None]
        t = torch.cat([t[:, :1], task, t[:, 1:]], dim=1)
        tmask = torch.cat([torch.ones_like(tmask[:, :1]), tmask], dim=1)
    t = _ln(sd, "bert.embeddings.LayerNorm", t)
    v = _lin(sd, "bert.v_embeddings.image_embeddings", feats) + _lin(sd, "bert.v_embeddings.image_location_embeddings", locs)
    v = _ln(sd, "bert.v_embeddings.LayerNorm", v)
    t_start = v_start = 0
    for k, (t_end, v_end) in enumerate(zip(cfg["t_biattention_id"], cfg["v_biattention_id"])):
        for i in range(t_start, t_end):
            t = _layer(sd, f"bert.encoder.layer.{i}", t, tmask, cfg["num_attention_heads"])
        for i in range(v_start, v_end):
            v = _layer(sd, f"bert.encoder.v_layer.{i}", v, vmask, cfg["v_num_attention_heads"])
        v, t = _coattention(sd, f"bert.encoder.c_layer.{k}", v, vmask, t, tmask, cfg["bi_num_attention_heads"])
        t_start, v_start = t_end, v_end
    for i in range(v_start, cfg["v_num_hidden_layers"]):
        v = _layer(sd, f"bert.encoder.v_layer.{i}", v, vmask, cfg["v_num_attention_heads"])
    for i in range(t_start, cfg["num_hidden_layers"]):
        t = _layer(sd, f"bert.encoder.layer.{i}", t, tmask, cfg["num_attention_heads"])
    pooled = F.relu(_lin(sd, "bert.t_pooler.dense", t[:, 0])) * F.relu(_lin(sd, "bert.v_pooler.dense", v[:, 0]))
    return t, v, pooled


def original_forward(sd, cfg, ids, tmask, feats, locs, vmask, task_ids=None):
    """`BertForMultiModalPreTraining` (arguments as `original_backbone`); returns (mlm logits
    [B, L (+1), V], region logits, alignment logits with the original's class 0 = aligned)."""
    t, v, pooled = original_backbone(sd, cfg, ids, tmask, feats, locs, vmask, task_ids)
    h = _ln(sd, "cls.predictions.transform.LayerNorm", F.gelu(_lin(sd, "cls.predictions.transform.dense", t)))
    mlm = h @ sd["cls.predictions.decoder.weight"].t() + sd["cls.predictions.bias"]
    hv = _ln(sd, "cls.imagePredictions.transform.LayerNorm", F.gelu(_lin(sd, "cls.imagePredictions.transform.dense", v)))
    return mlm, _lin(sd, "cls.imagePredictions.decoder", hv), _lin(sd, "cls.bi_seq_relationship", pooled)


def original_vqa_logits(sd, cfg, ids, tmask, feats, locs, vmask, task_ids=None):
    """`VILBertForVLTasks`'s `vil_prediction` (12-in-1's VQA head, a SimpleClassifier), in eval mode."""
    _, _, pooled = original_backbone(sd, cfg, ids, tmask, feats, locs, vmask, task_ids)
    h = F.gelu(_lin(sd, "vil_prediction.logit_fc.0", pooled))
    return _lin(sd, "vil_prediction.logit_fc.3", _ln(sd, "vil_prediction.logit_fc.2", h))
