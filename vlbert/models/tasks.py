"""Task models: the backbone plus the heads each task needs, and the registry of task names.

Every task model keeps the backbone under `vlbert` so that a pre-trained checkpoint loads into any
of them with `from_pretrained` (new heads are reported as newly initialised). Each has
`forward(input_ids, **inputs)` (inputs as `VLBertModel.forward`) and `forward_states(text, image)`
on unimodal states from `vlbert.encode_pair`, which may be cached and re-paired with `select`.

`TASK_MODELS` maps each task of `vlbert.tasks.TASKS` (and "backbone") to its model class; the class
says which texts of a record its examples read (`text_kind`, for the data pipeline).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar, Literal

from torch import Tensor, nn
from transformers.models.bert.modeling_bert import BertLMPredictionHead

from vlbert.config import VLBertConfig
from vlbert.models.backbone import VLBertModel, VLBertPreTrainedModel
from vlbert.models.heads import ITCHead, ITMHead, RegionHead, VQAHead, fuse_pooled
from vlbert.models.outputs import (
    CaptioningOutput,
    ImageStates,
    PreTrainingOutput,
    RetrievalOutput,
    TextStates,
    VLBertOutput,
    VQAOutput,
)
from vlbert.models.task_tokens import drop_task_token
from vlbert.tasks import TASKS, task_named


class _TaskModel(VLBertPreTrainedModel):
    vlbert: VLBertModel
    text_kind: ClassVar[Literal["captions", "questions"]] = "captions"  # which texts of a record it reads

    def forward(self, input_ids: Tensor, **inputs: Any) -> Any:
        return self.forward_states(*self.vlbert.encode_pair(input_ids, **inputs))

    def forward_states(self, text: TextStates, image: ImageStates) -> Any:
        raise NotImplementedError

    def fused(self, out: VLBertOutput) -> Tensor:
        return fuse_pooled(out.pooled_text, out.pooled_visual, self.config.fusion_method)  # [B, Dbi]


class _Matching(_TaskModel):
    """Models with ITM and ITC heads."""

    itm_head: ITMHead
    itc_head: ITCHead

    def match_logits(self, text: TextStates, image: ImageStates) -> Tensor:
        """ITM logits [P, 2] of paired rows of cached states (column 1 = match)."""
        return self.itm_head(self.fused(self.vlbert.fuse(text, image)))


class _WithMLMHead(_TaskModel):
    """A task model whose MLM decoder is tied to the word embeddings."""

    _tied_weights_keys = {
        "mlm_head.decoder.weight": "vlbert.embeddings.word_embeddings.weight",
        "mlm_head.decoder.bias": "mlm_head.bias",
    }
    mlm_head: BertLMPredictionHead

    def get_output_embeddings(self) -> nn.Linear:
        return self.mlm_head.decoder

    def set_output_embeddings(self, new: nn.Linear) -> None:
        self.mlm_head.decoder = new
        self.mlm_head.bias = new.bias


class VLBertForPreTraining(_WithMLMHead, _Matching):
    """MLM + masked region modelling + ITM + ITC heads."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__(config)
        self.vlbert = VLBertModel(config)
        self.mlm_head = BertLMPredictionHead(config.text_bert_config())
        self.region_head = RegionHead(config)
        self.itm_head = ITMHead(config)
        self.itc_head = ITCHead(config)
        self.post_init()

    def forward_states(self, text: TextStates, image: ImageStates, mlm_positions: Tensor | None = None,
                       ) -> PreTrainingOutput:
        """`mlm_positions` [B, L] bool: score the vocabulary only there (`mlm_logits` [M, vocab], M
        positions in row-major order), not at every token as the original does."""
        out = self.vlbert.fuse(text, image)
        text_embed, image_embed, scale = self.itc_head(out.unimodal_text, out.unimodal_visual)
        text_hidden = drop_task_token(out.text_hidden, self.config)  # [B, L, H]
        if mlm_positions is not None:
            text_hidden = text_hidden[mlm_positions]  # [M, H]
        return PreTrainingOutput(
            mlm_logits=self.mlm_head(text_hidden),  # [B, L, vocab], or [M, vocab] at mlm_positions
            region_logits=self.region_head(out.visual_hidden),
            itm_logits=self.itm_head(self.fused(out)),
            text_embed=text_embed,
            image_embed=image_embed,
            logit_scale=scale,
            backbone=out,
        )


class VLBertForVQA(_TaskModel):
    text_kind = "questions"

    def __init__(self, config: VLBertConfig, dropout: float = 0.1) -> None:
        super().__init__(config)
        self.vlbert = VLBertModel(config)
        self.dropout = nn.Dropout(dropout)
        self.vqa_head = VQAHead(config)
        self.post_init()

    def forward_states(self, text: TextStates, image: ImageStates) -> VQAOutput:
        out = self.vlbert.fuse(text, image)
        if self.config.vqa_text_pooling == "mean":  # every text token's state, averaged, through the pooler
            mask = out.text_mask.to(out.text_hidden.dtype)[..., None]  # [B, L, 1]
            mean = (out.text_hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # [B, D]
            out = replace(out, pooled_text=self.vlbert.t_pooler(mean[:, None]))  # [B, Dbi]
        return VQAOutput(logits=self.vqa_head(self.dropout(self.fused(out))), backbone=out)


class VLBertForRetrieval(_Matching):
    """ITM cross-encoder score per pair plus ITC embeddings for fast first-stage retrieval."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__(config)
        self.vlbert = VLBertModel(config)
        self.itm_head = ITMHead(config)
        self.itc_head = ITCHead(config)
        self.post_init()

    def forward_states(self, text: TextStates, image: ImageStates) -> RetrievalOutput:
        out = self.vlbert.fuse(text, image)
        text_embed, image_embed, scale = self.itc_head(out.unimodal_text, out.unimodal_visual)
        return RetrievalOutput(self.itm_head(self.fused(out)), text_embed, image_embed, scale, out)


class VLBertForCaptioning(_WithMLMHead):
    """The text stream under a sequence-to-sequence mask; logits at i predict token i + 1."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__(config)
        self.vlbert = VLBertModel(config)
        self.mlm_head = BertLMPredictionHead(config.text_bert_config())
        self.post_init()

    def forward(self, input_ids: Tensor, **inputs: Any) -> CaptioningOutput:
        return self.forward_states(*self.vlbert.encode_pair(input_ids, causal=True, **inputs))

    def forward_states(self, text: TextStates, image: ImageStates) -> CaptioningOutput:
        if not text.causal:
            raise ValueError("captioning needs text states encoded with causal=True")
        out = self.vlbert.fuse(text, image)
        return CaptioningOutput(logits=self.mlm_head(drop_task_token(out.text_hidden, self.config)), backbone=out)


TASK_MODELS: dict[str, type[VLBertPreTrainedModel]] = {
    "backbone": VLBertModel,
    "pretraining": VLBertForPreTraining,
    "vqa": VLBertForVQA,
    "retrieval": VLBertForRetrieval,
    "captioning": VLBertForCaptioning,
}
TASK_BY_CLASS = {TASK_MODELS[task].__name__: task for task in TASKS}  # config.json `architectures` -> task


def task_text(task: str) -> str:
    """Which texts of a record the task's examples read: "questions" (VQA) or "captions"."""
    return TASK_MODELS[task_named(task)].text_kind  # type: ignore[attr-defined]
