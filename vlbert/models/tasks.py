"""Task models: the backbone plus the heads each task needs.

Every task model keeps the backbone under `vlbert` so that a pre-trained checkpoint loads into any
of them with `from_pretrained` (new heads are reported as newly initialised).
"""

from __future__ import annotations

from torch import Tensor, nn
from transformers.models.bert.modeling_bert import BertLMPredictionHead

from vlbert.config import VLBertConfig
from vlbert.models.backbone import VLBertModel, VLBertPreTrainedModel
from vlbert.models.heads import ITCHead, ITMHead, RegionHead, VQAHead, fuse_pooled
from vlbert.models.outputs import CaptioningOutput, PreTrainingOutput, RetrievalOutput, VQAOutput

_MLM_TIES = {
    "mlm_head.decoder.weight": "vlbert.embeddings.word_embeddings.weight",
    "mlm_head.decoder.bias": "mlm_head.bias",
}


class _WithMLMHead(VLBertPreTrainedModel):
    """A task model whose MLM decoder is tied to the word embeddings."""

    _tied_weights_keys = _MLM_TIES

    def get_output_embeddings(self) -> nn.Linear:
        return self.mlm_head.decoder

    def set_output_embeddings(self, new: nn.Linear) -> None:
        self.mlm_head.decoder = new
        self.mlm_head.bias = new.bias


class VLBertForPreTraining(_WithMLMHead):
    """MLM + masked region modelling + ITM + ITC heads."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__(config)
        self.vlbert = VLBertModel(config)
        self.mlm_head = BertLMPredictionHead(config.text_bert_config())
        self.region_head = RegionHead(config)
        self.itm_head = ITMHead(config)
        self.itc_head = ITCHead(config)
        self.post_init()

    def forward(self, input_ids: Tensor, **inputs: object) -> PreTrainingOutput:
        """Arguments as `VLBertModel.forward`."""
        out = self.vlbert(input_ids, **inputs)
        fused = fuse_pooled(out.pooled_text, out.pooled_visual, self.config.fusion_method)
        text_embed, image_embed, scale = self.itc_head(out.unimodal_text, out.unimodal_visual)
        return PreTrainingOutput(
            mlm_logits=self.mlm_head(out.text_hidden),
            region_logits=self.region_head(out.visual_hidden),
            itm_logits=self.itm_head(fused),
            text_embed=text_embed,
            image_embed=image_embed,
            logit_scale=scale,
            backbone=out,
        )


class VLBertForVQA(VLBertPreTrainedModel):
    def __init__(self, config: VLBertConfig, dropout: float = 0.1) -> None:
        super().__init__(config)
        self.vlbert = VLBertModel(config)
        self.dropout = nn.Dropout(dropout)
        self.vqa_head = VQAHead(config)
        self.post_init()

    def forward(self, input_ids: Tensor, **inputs: object) -> VQAOutput:
        out = self.vlbert(input_ids, **inputs)
        fused = fuse_pooled(out.pooled_text, out.pooled_visual, self.config.fusion_method)
        return VQAOutput(logits=self.vqa_head(self.dropout(fused)), backbone=out)


class VLBertForRetrieval(VLBertPreTrainedModel):
    """ITM cross-encoder score per pair plus ITC embeddings for fast first-stage retrieval."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__(config)
        self.vlbert = VLBertModel(config)
        self.itm_head = ITMHead(config)
        self.itc_head = ITCHead(config)
        self.post_init()

    def forward(self, input_ids: Tensor, **inputs: object) -> RetrievalOutput:
        out = self.vlbert(input_ids, **inputs)
        fused = fuse_pooled(out.pooled_text, out.pooled_visual, self.config.fusion_method)
        text_embed, image_embed, scale = self.itc_head(out.unimodal_text, out.unimodal_visual)
        return RetrievalOutput(self.itm_head(fused), text_embed, image_embed, scale, out)


class VLBertForCaptioning(_WithMLMHead):
    """The text stream under a sequence-to-sequence mask; logits at i predict token i + 1."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__(config)
        self.vlbert = VLBertModel(config)
        self.mlm_head = BertLMPredictionHead(config.text_bert_config())
        self.post_init()

    def forward(self, input_ids: Tensor, **inputs: object) -> CaptioningOutput:
        out = self.vlbert(input_ids, causal=True, **inputs)
        return CaptioningOutput(logits=self.mlm_head(out.text_hidden), backbone=out)


TASK_MODELS: dict[str, type[VLBertPreTrainedModel]] = {
    "backbone": VLBertModel,
    "pretraining": VLBertForPreTraining,
    "vqa": VLBertForVQA,
    "retrieval": VLBertForRetrieval,
    "captioning": VLBertForCaptioning,
}
