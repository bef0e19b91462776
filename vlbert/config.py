"""`VLBertConfig`: one configuration for the text stream, the visual stream, the co-attention
blocks, the image encoder and the task heads.

Keys keep the names of the original ViLBERT config (`config/bert_base_6layer_6conect.json` in
facebookresearch/vilbert-multi-task) so an original JSON file loads as it is; keys the original
reads but never uses (`pooling_method`, `bi_intermediate_size`, `bi_attention_type`) are accepted
and ignored, see `from_original_dict`.
"""

from __future__ import annotations

from typing import Any

from transformers import BertConfig, PretrainedConfig

IMAGE_ENCODERS = ("regions", "vit", "cnn")
REGION_OBJECTIVES = ("kl", "regression")
FUSION_METHODS = ("mul", "sum")
POOLER_ACTIVATIONS = ("relu", "tanh")
# Keys of the original config that the original code never reads.
ORIGINAL_UNUSED_KEYS = ("pooling_method", "bi_intermediate_size", "bi_attention_type")


class VLBertConfig(PretrainedConfig):
    """Configuration of a two-stream ViLBERT model.

    Text stream (a BERT): `vocab_size`, `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
    `intermediate_size`, `hidden_act`, `hidden_dropout_prob`, `attention_probs_dropout_prob`,
    `max_position_embeddings`, `type_vocab_size`, `layer_norm_eps`.

    Visual stream: `v_feature_size` (input feature width), `v_hidden_size`, `v_num_hidden_layers`,
    `v_num_attention_heads`, `v_intermediate_size`, `v_hidden_act`, `v_hidden_dropout_prob`,
    `v_attention_probs_dropout_prob`, `v_target_size` (detector classes for masked region
    modelling), `add_global_image_token` (prepend the mean region as an IMG token).

    Co-attention: `bi_hidden_size`, `bi_num_attention_heads`, `t_biattention_id` (text layer
    before which block k runs), `v_biattention_id` (visual layer likewise), `fusion_method`
    ("mul" as in the original, or "sum").

    Options that depart from the original (defaults keep ViLBERT's computation; see docs/model.md
    for what each buys on the built-in data): `pooler_act` ("relu" as ViLBERT, or BERT's "tanh"),
    `v_location_norm` (normalise the box embedding apart from the feature embedding and average
    them, as LXMERT; the original sums them under one LayerNorm), `v_feature_norm` (LayerNorm each
    region's input feature before its projection).

    Image encoder: `image_encoder` is "regions" (precomputed features + boxes), "vit" (a timm ViT's
    patch tokens) or "cnn" (a timm CNN's last feature-map grid); `image_model` names the timm
    architecture, `image_pretrained` a local weight file, directory or hub name (None: random),
    `image_size` the input resolution, `freeze_image_encoder` whether its weights train, and
    `image_model_kwargs` extra arguments for `timm.create_model` (e.g. a smaller depth).

    Heads: `region_objective` ("kl" to the detector's class distribution, or "regression" to the
    masked region's feature; default: "kl" for region inputs, "regression" for pixel encoders),
    `itc_dim` (contrastive projection width), `num_answers` (VQA classifier size).
    """

    model_type = "vlbert"

    def __init__(
        self,
        # text stream
        vocab_size: int = 30522,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        # visual stream
        v_feature_size: int = 2048,
        v_hidden_size: int = 1024,
        v_num_hidden_layers: int = 6,
        v_num_attention_heads: int = 8,
        v_intermediate_size: int = 1024,
        v_hidden_act: str = "gelu",
        v_hidden_dropout_prob: float = 0.1,
        v_attention_probs_dropout_prob: float = 0.1,
        v_target_size: int = 1601,
        add_global_image_token: bool = True,
        # co-attention
        bi_hidden_size: int = 1024,
        bi_num_attention_heads: int = 8,
        t_biattention_id: list[int] | tuple[int, ...] = (6, 7, 8, 9, 10, 11),
        v_biattention_id: list[int] | tuple[int, ...] = (0, 1, 2, 3, 4, 5),
        fusion_method: str = "mul",
        pooler_act: str = "relu",
        v_location_norm: bool = False,
        v_feature_norm: bool = False,
        # image encoder
        image_encoder: str = "regions",
        image_model: str | None = None,
        image_pretrained: str | None = None,
        image_size: int = 224,
        freeze_image_encoder: bool = False,
        image_model_kwargs: dict[str, Any] | None = None,
        # heads
        region_objective: str | None = None,
        itc_dim: int = 256,
        num_answers: int = 3129,
        pad_token_id: int = 0,
        **kwargs: Any,
    ) -> None:
        for key in ORIGINAL_UNUSED_KEYS:
            kwargs.pop(key, None)
        kwargs.setdefault("attn_implementation", "sdpa")
        tie_word_embeddings = kwargs.pop("tie_word_embeddings", True)
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.tie_word_embeddings = tie_word_embeddings  # MLM decoder = word embeddings
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.v_feature_size = v_feature_size
        self.v_hidden_size = v_hidden_size
        self.v_num_hidden_layers = v_num_hidden_layers
        self.v_num_attention_heads = v_num_attention_heads
        self.v_intermediate_size = v_intermediate_size
        self.v_hidden_act = v_hidden_act
        self.v_hidden_dropout_prob = v_hidden_dropout_prob
        self.v_attention_probs_dropout_prob = v_attention_probs_dropout_prob
        self.v_target_size = v_target_size
        self.add_global_image_token = add_global_image_token
        self.bi_hidden_size = bi_hidden_size
        self.bi_num_attention_heads = bi_num_attention_heads
        self.t_biattention_id = list(t_biattention_id)
        self.v_biattention_id = list(v_biattention_id)
        self.fusion_method = fusion_method
        self.pooler_act = pooler_act
        self.v_location_norm = v_location_norm
        self.v_feature_norm = v_feature_norm
        self.image_encoder = image_encoder
        self.image_model = image_model
        self.image_pretrained = image_pretrained
        self.image_size = image_size
        self.freeze_image_encoder = freeze_image_encoder
        self.image_model_kwargs = dict(image_model_kwargs or {})
        self.region_objective = region_objective
        self.itc_dim = itc_dim
        self.num_answers = num_answers
        self.validate()

    def validate(self) -> None:
        """Raise `ValueError` naming the first inconsistent setting."""
        t_ids, v_ids = self.t_biattention_id, self.v_biattention_id
        if len(t_ids) != len(v_ids):
            raise ValueError(
                f"t_biattention_id {t_ids} and v_biattention_id {v_ids} must have the same length"
            )
        for name, ids, depth in (
            ("t_biattention_id", t_ids, self.num_hidden_layers),
            ("v_biattention_id", v_ids, self.v_num_hidden_layers),
        ):
            if list(ids) != sorted(ids) or any(not 0 <= i <= depth for i in ids):
                raise ValueError(f"{name} {ids} must be non-decreasing layer indices in [0, {depth}]")
        for width, heads, what in (
            (self.hidden_size, self.num_attention_heads, "hidden_size/num_attention_heads"),
            (self.v_hidden_size, self.v_num_attention_heads, "v_hidden_size/v_num_attention_heads"),
            (self.bi_hidden_size, self.bi_num_attention_heads, "bi_hidden_size/bi_num_attention_heads"),
        ):
            if width % heads:
                raise ValueError(f"{what}: {width} is not divisible by {heads}")
        if self.fusion_method not in FUSION_METHODS:
            raise ValueError(f"fusion_method must be one of {FUSION_METHODS}, got {self.fusion_method!r}")
        if self.pooler_act not in POOLER_ACTIVATIONS:
            raise ValueError(f"pooler_act must be one of {POOLER_ACTIVATIONS}, got {self.pooler_act!r}")
        if self.image_encoder not in IMAGE_ENCODERS:
            raise ValueError(f"image_encoder must be one of {IMAGE_ENCODERS}, got {self.image_encoder!r}")
        if self.region_objective is not None and self.region_objective not in REGION_OBJECTIVES:
            raise ValueError(f"region_objective must be one of {REGION_OBJECTIVES}, got {self.region_objective!r}")
        if self.image_encoder != "regions" and not self.image_model:
            raise ValueError(f"image_encoder={self.image_encoder!r} needs image_model (a timm name)")

    @property
    def num_coattention_layers(self) -> int:
        return len(self.t_biattention_id)

    @property
    def resolved_region_objective(self) -> str:
        if self.region_objective is not None:
            return self.region_objective
        return "kl" if self.image_encoder == "regions" else "regression"

    @property
    def region_target_size(self) -> int:
        """Width of the masked-region head's output."""
        return self.v_target_size if self.resolved_region_objective == "kl" else self.v_feature_size

    def text_bert_config(self) -> BertConfig:
        """A transformers `BertConfig` for the text stream's embeddings and layers."""
        return self._bert_config(
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_act=self.hidden_act,
            hidden_dropout_prob=self.hidden_dropout_prob,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
            num_hidden_layers=self.num_hidden_layers,
        )

    def visual_bert_config(self) -> BertConfig:
        """A transformers `BertConfig` for the visual stream's layers (same structure as BERT)."""
        return self._bert_config(
            hidden_size=self.v_hidden_size,
            num_attention_heads=self.v_num_attention_heads,
            intermediate_size=self.v_intermediate_size,
            hidden_act=self.v_hidden_act,
            hidden_dropout_prob=self.v_hidden_dropout_prob,
            attention_probs_dropout_prob=self.v_attention_probs_dropout_prob,
            num_hidden_layers=self.v_num_hidden_layers,
        )

    def _bert_config(self, **sizes: Any) -> BertConfig:
        config = BertConfig(
            vocab_size=self.vocab_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            layer_norm_eps=self.layer_norm_eps,
            initializer_range=self.initializer_range,
            pad_token_id=self.pad_token_id,
            **sizes,
        )
        config._attn_implementation = self._attn_implementation or "sdpa"
        return config

    @classmethod
    def from_original_dict(cls, original: dict[str, Any], **overrides: Any) -> "VLBertConfig":
        """Build from an original vilbert-multi-task config dict (its JSON file, loaded)."""
        known = set(cls().to_dict()) | set(ORIGINAL_UNUSED_KEYS)
        kwargs = {k: v for k, v in original.items() if k in known}
        kwargs.update(overrides)
        return cls(**kwargs)


def _register_auto_classes() -> None:
    """Let transformers' Auto classes resolve model_type "vlbert"."""
    from transformers import AutoConfig

    AutoConfig.register("vlbert", VLBertConfig, exist_ok=True)


_register_auto_classes()
