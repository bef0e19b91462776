"""The ViLBERT backbone: a BERT text stream and a visual stream joined by co-attention blocks.

Order of computation (as the original `BertEncoder`): before co-attention block k, run text layers
up to `t_biattention_id[k]` and visual layers up to `v_biattention_id[k]`; after the last block,
the remaining layers of each stream. The forward pass is split in three so that retrieval can
cache the unimodal states: `encode_text` and `encode_image` run each stream up to the first
co-attention block, `fuse` runs the rest.

Parameter names follow the original (`embeddings`, `v_embeddings`, `encoder.layer`,
`encoder.v_layer`, `encoder.c_layer`, `t_pooler`, `v_pooler`), so a BERT checkpoint's
`embeddings.*` and `encoder.layer.*` load into the text stream as they are.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.models.bert.modeling_bert import BertEmbeddings, BertLayer

from vlbert.config import VLBertConfig
from vlbert.models.coattention import CoAttentionLayer
from vlbert.models.embeddings import RegionEmbeddings
from vlbert.models.geometry import GeometryBias
from vlbert.models.image_encoders import EncodedImage, build_image_encoder
from vlbert.models.masks import StreamMasks, build_stream_masks, text_self_mask
from vlbert.models.outputs import ImageStates, TextStates, VLBertOutput
from vlbert.models.prompt import TextPrompt
from vlbert.models.regions import boxes_to_locations, prepend_global_token, zero_masked_regions
from vlbert.models.task_tokens import build_text_embeddings, embed_text
from vlbert.weights.checkpoint import load_weights, resolve_directory, write_state_dict

logger = logging.getLogger(__name__)


class VLBertPreTrainedModel(PreTrainedModel):
    config_class = VLBertConfig
    base_model_prefix = "vlbert"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        if getattr(module, "_vlbert_keep_init", False):
            return  # timm image encoders keep their own (or their pretrained) weights
        super()._init_weights(module)
        after = getattr(module, "_vlbert_after_init", None)
        if after is not None:
            after()  # e.g. GeometryBias's distance prior, once its last Linear has its random start
        if isinstance(module, BertEmbeddings):
            with torch.no_grad():
                module.position_ids.copy_(torch.arange(module.position_ids.shape[-1]).expand((1, -1)))
                module.token_type_ids.zero_()

    def enable_checkpointing(self) -> None:
        """Recompute every text, visual and co-attention layer in the backward pass (less memory)."""
        kwargs = {"use_reentrant": False}
        if hasattr(self, "activation_checkpointing_enable"):  # transformers >= 5.x
            self.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            self.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike, state_dict: dict[str, Tensor] | None = None,
                        safe_serialization: bool = True, **unsupported: Any) -> None:
        """Write `config.json` and `model.safetensors` (tied weights stored once); `state_dict`
        replaces the model's own (e.g. the whole state of a sharded model). Of the other arguments
        of transformers' `save_pretrained`, none is honoured: passing one is a TypeError."""
        if unsupported:
            raise TypeError(f"save_pretrained got arguments vlbert does not support: {', '.join(sorted(unsupported))}")
        if not safe_serialization:
            raise ValueError("vlbert saves safetensors only; safe_serialization=False is not supported")
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = copy.deepcopy(self.config)
        config.image_pretrained = None  # the weights are in the file; do not fetch them again
        config.architectures = [type(self).__name__]  # which task model this is
        config.save_pretrained(str(directory))
        tied = set(getattr(self, "_tied_weights_keys", None) or {})  # copies of other tensors
        state = self.state_dict() if state_dict is None else state_dict
        write_state_dict({k: v for k, v in state.items() if k not in tied}, directory)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *args: Any, **overrides: Any) -> "VLBertPreTrainedModel":
        """Load a directory written by `save_pretrained` (or a hub id). `overrides` change config
        keys that do not alter shapes (dropout, `freeze_image_encoder`, ...)."""
        if args:
            raise TypeError("from_pretrained takes the path and keyword overrides only")
        directory = resolve_directory(name_or_path)
        config = VLBertConfig.from_pretrained(str(directory), **overrides)
        config.image_pretrained = None  # the saved weights replace any timm initialisation
        model = cls(config)
        report = load_weights(model, directory, cls.base_model_prefix)
        if report.missing:
            logger.warning("%s: newly initialised (not in the checkpoint): %s", name_or_path, report.missing)
        if report.unexpected:
            logger.info("%s: checkpoint weights this model does not use: %s", name_or_path, report.unexpected)
        return model.eval()


def _run_layers(layers: nn.ModuleList, start: int, end: int, hidden: Tensor, mask: Tensor) -> Tensor:
    for layer in layers[start:end]:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out  # transformers 4.x returns a tuple
    return hidden


class Pooler(nn.Module):
    """First token -> Linear -> ReLU (ViLBERT's pooler), or tanh (BERT's) with `pooler_act="tanh"`."""

    def __init__(self, in_size: int, out_size: int, activation: str = "relu") -> None:
        super().__init__()
        self.dense = nn.Linear(in_size, out_size)
        self.activation = ACT2FN[activation]

    def forward(self, hidden: Tensor) -> Tensor:
        return self.activation(self.dense(hidden[:, 0]))  # [B, N, D] -> [B, Dbi]


class VLBertEncoder(nn.Module):
    def __init__(self, config: VLBertConfig) -> None:
        super().__init__()
        t_cfg, v_cfg = config.text_bert_config(), config.visual_bert_config()
        self.t_ids, self.v_ids = list(config.t_biattention_id), list(config.v_biattention_id)
        self.layer = nn.ModuleList(BertLayer(t_cfg, layer_idx=i) for i in range(config.num_hidden_layers))
        self.v_layer = nn.ModuleList(BertLayer(v_cfg, layer_idx=i) for i in range(config.v_num_hidden_layers))
        self.c_layer = nn.ModuleList(CoAttentionLayer(config) for _ in range(config.num_coattention_layers))

    @property
    def text_start(self) -> int:
        """Text layers that run before the first co-attention block."""
        return self.t_ids[0] if self.t_ids else len(self.layer)

    @property
    def visual_start(self) -> int:
        return self.v_ids[0] if self.v_ids else len(self.v_layer)

    def run_text(self, hidden: Tensor, mask: Tensor, start: int, end: int) -> Tensor:
        return _run_layers(self.layer, start, end, hidden, mask)

    def run_visual(self, hidden: Tensor, mask: Tensor, start: int, end: int) -> Tensor:
        return _run_layers(self.v_layer, start, end, hidden, mask)

    def fuse(self, text: Tensor, visual: Tensor, masks: StreamMasks) -> tuple[Tensor, Tensor]:
        """From the first co-attention block to the end: ([B, L, Dt], [B, R, Dv]) -> the same."""
        t_start, v_start = self.text_start, self.visual_start
        for block, t_end, v_end in zip(self.c_layer, self.t_ids, self.v_ids):
            text = self.run_text(text, masks.text, t_start, t_end)
            visual = self.run_visual(visual, masks.visual, v_start, v_end)
            visual, text = block(visual, text, masks)
            t_start, v_start = t_end, v_end
        text = self.run_text(text, masks.text, t_start, len(self.layer))
        visual = self.run_visual(visual, masks.visual, v_start, len(self.v_layer))
        return text, visual


class VLBertModel(VLBertPreTrainedModel):
    """The two-stream backbone. Inputs: token ids, and either region features + boxes or pixels."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__(config)
        self.image_encoder = build_image_encoder(config)  # sets v_feature_size for pixel encoders
        for module in self.image_encoder.modules():
            module._vlbert_keep_init = True
        self.embeddings = build_text_embeddings(config)  # BertEmbeddings (+ task tokens if configured)
        self.text_prompt = TextPrompt(config) if config.num_prompt_tokens else None  # prompt tuning
        self.v_embeddings = RegionEmbeddings(config)
        self.v_geometry = GeometryBias(config) if config.v_geometry_bias else None  # off in ViLBERT
        self.encoder = VLBertEncoder(config)
        self.t_pooler = Pooler(config.hidden_size, config.bi_hidden_size, config.pooler_act)
        self.v_pooler = Pooler(config.v_hidden_size, config.bi_hidden_size, config.pooler_act)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def encode_text(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        causal: bool = False,
        task_ids: Tensor | int | None = None,
    ) -> TextStates:
        """Embeddings and the text layers before the first co-attention block. ids [B, L]. With
        `task_specific_tokens`, `task_ids` (int or [B]) picks the task token and the states have
        L + 1 positions (see `vlbert.models.task_tokens`)."""
        mask = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        hidden, mask = embed_text(self.embeddings, self.config, input_ids, mask, token_type_ids, task_ids)
        if self.text_prompt is not None:
            hidden, mask = self.text_prompt(hidden, mask)  # L' + P positions
        hidden = self.encoder.run_text(hidden, text_self_mask(mask, causal), 0, self.encoder.text_start)
        return TextStates(hidden, mask, causal)

    def encode_regions(
        self,
        region_features: Tensor | None = None,
        region_boxes: Tensor | None = None,
        region_mask: Tensor | None = None,
        pixel_values: Tensor | None = None,
    ) -> EncodedImage:
        """Run the image encoder: region features + boxes, or pixels, to regions."""
        if self.config.image_encoder == "regions":
            if region_features is None or region_boxes is None:
                raise ValueError("this model reads region features: pass region_features and region_boxes")
            return self.image_encoder(region_features, region_boxes, region_mask)
        if pixel_values is None:
            raise ValueError(f"this model reads pixels ({self.config.image_encoder}): pass pixel_values")
        return self.image_encoder(pixel_values)

    def encode_image(
        self,
        region_features: Tensor | None = None,
        region_boxes: Tensor | None = None,
        region_mask: Tensor | None = None,
        pixel_values: Tensor | None = None,
        masked_regions: Tensor | None = None,
    ) -> ImageStates:
        """Image encoder, region masking, IMG token, visual embedding and the visual layers before
        the first co-attention block. `masked_regions` [B, N] bool zeroes those regions' features
        (N counts the encoder's regions, without the IMG token)."""
        regions = self.encode_regions(region_features, region_boxes, region_mask, pixel_values)
        features = zero_masked_regions(regions.features, masked_regions)  # [B, N, Df]
        locations = boxes_to_locations(regions.boxes)  # [B, N, 5]
        targets, mask = regions.features, regions.mask
        if self.config.add_global_image_token:
            features, locations, mask = prepend_global_token(features, locations, mask)  # R = N + 1
            targets = torch.cat([features[:, :1], targets], dim=1)
        hidden = self.v_embeddings(features, locations)  # [B, R, Dv]
        image = ImageStates(hidden, mask, targets, locations if self.v_geometry is not None else None)
        hidden = self.encoder.run_visual(hidden, self.visual_attention_mask(image), 0, self.encoder.visual_start)
        return replace(image, hidden=hidden)

    def visual_attention_mask(self, image: ImageStates) -> Tensor:
        """The visual self-attention's mask: [B, 1, 1, R] bool, or with `v_geometry_bias` the
        [B, H, R, R] additive box-geometry bias (padding keys at the dtype's minimum)."""
        if self.v_geometry is None:
            return image.mask[:, None, None, :]
        if image.locations is None:
            raise ValueError("this model's visual attention reads the boxes: ImageStates.locations is missing")
        return self.v_geometry(image.locations, image.mask, image.hidden.dtype)

    def fuse(self, text: TextStates, image: ImageStates) -> VLBertOutput:
        """The co-attention part, from unimodal states (which may be cached and re-paired)."""
        masks = build_stream_masks(text.mask, image.mask, causal=text.causal)
        if self.v_geometry is not None:
            masks = replace(masks, visual=self.visual_attention_mask(image))
        text_hidden, visual_hidden = self.encoder.fuse(text.hidden, image.hidden, masks)
        return VLBertOutput(
            text_hidden=text_hidden,
            visual_hidden=visual_hidden,
            pooled_text=self.t_pooler(text_hidden),
            pooled_visual=self.v_pooler(visual_hidden),
            text_mask=text.mask,
            visual_mask=image.mask,
            unimodal_text=text.hidden[:, 0],
            unimodal_visual=image.hidden[:, 0],
            visual_features=image.features,
        )

    def encode_pair(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        region_features: Tensor | None = None,
        region_boxes: Tensor | None = None,
        region_mask: Tensor | None = None,
        pixel_values: Tensor | None = None,
        masked_regions: Tensor | None = None,
        causal: bool = False,
        task_ids: Tensor | int | None = None,
    ) -> tuple[TextStates, ImageStates]:
        """Both streams up to the first co-attention block (arguments as `forward`)."""
        text = self.encode_text(input_ids, attention_mask, token_type_ids, causal, task_ids)
        image = self.encode_image(region_features, region_boxes, region_mask, pixel_values, masked_regions)
        return text, image

    def forward(self, input_ids: Tensor, **inputs: Any) -> VLBertOutput:
        """input_ids [B, L]; attention_mask [B, L]; token_type_ids [B, L]; region_features
        [B, N, Df] + region_boxes [B, N, 4] (normalised x1, y1, x2, y2) + region_mask [B, N], or
        pixel_values [B, 3, H, W]; masked_regions [B, N] bool; causal (captioning masks); task_ids
        (int or [B], models with `task_specific_tokens` only)."""
        return self.fuse(*self.encode_pair(input_ids, **inputs))


def _register_auto_model() -> None:
    from transformers import AutoModel

    AutoModel.register(VLBertConfig, VLBertModel, exist_ok=True)


_register_auto_model()
