"""`VLBertConfig`: one configuration for the text stream, the visual stream, the co-attention
blocks, the image encoder and the task heads.

Keys keep the names of the original ViLBERT config (`config/bert_base_6layer_6conect.json` in
facebookresearch/vilbert-multi-task) so an original JSON file loads as it is; keys the original
reads but never uses (`pooling_method`, `bi_intermediate_size`, `bi_attention_type`) are accepted
and ignored, see `from_original_dict`, which names every key it ignores and refuses the keys that
would change the computation.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

from transformers import BertConfig, PretrainedConfig

IMAGE_ENCODERS = ("regions", "vit", "cnn")
REGION_OBJECTIVES = ("kl", "regression")
FUSION_METHODS = ("mul", "sum")
POOLER_ACTIVATIONS = ("relu", "tanh")
VQA_TEXT_POOLINGS = ("first", "mean")  # what the VQA head reads of the text stream
# Keys of the original config that the original code never reads.
ORIGINAL_UNUSED_KEYS = ("pooling_method", "bi_intermediate_size", "bi_attention_type")
# Original config keys (vilbert-multi-task's BertConfig) that leave a model's outputs as they are,
# whatever their value: `from_original_dict` drops them and names each with this reason.
ORIGINAL_HARMLESS_KEYS: dict[str, str] = {
    "pooling_method": "never read by the original code (fusion_method picks the pooling)",
    "bi_intermediate_size": "never read by the original code (the co-attention feed-forwards use "
    "intermediate_size and v_intermediate_size)",
    "bi_attention_type": "never read by the original code",
    "v_initializer_range": "never read by the original code (initializer_range initialises both streams)",
    "fixed_t_layer": "training only: the original runs the text layers below it under torch.no_grad(); "
    "the outputs are the same",
    "fixed_v_layer": "training only: the original runs the visual layers below it under torch.no_grad(); "
    "the outputs are the same",
    "visualization": "only makes the original keep attention maps for display",
    "objective": "read by the original pre-training data loader (which negatives it samples), not by the model",
    "num_negative": "read only by the original pre-training loss of visual_target=2",
    **dict.fromkeys(
        ("finetuning_task", "num_labels", "output_attentions", "output_hidden_states", "torchscript"),
        "pytorch-transformers bookkeeping that the original model never reads",
    ),
}
# Original config keys that change the computation unless they hold the value vlbert computes:
# key -> (that value, what another value does). Another value is refused.
ORIGINAL_FIXED_KEYS: dict[str, tuple[Any, str]] = {
    "model": ("bert", "'roberta' uses RoBERTa's text embeddings (position offset, one token type)"),
    "with_coattention": (True, "false skips every co-attention block"),
    "dynamic_attention": (False, "true gates the visual layers' queries and keys by the mean text state"),
    "fast_mode": (False, "true broadcasts one text over the image batch after the first layers "
                  "(vlbert: cache encode_text's states and re-pair them)"),
    "in_batch_pairs": (False, "true pairs every text with every image of the batch (B*B rows)"),
}
# visual_target (the masked-region objective of the original's pre-training) -> region_objective.
ORIGINAL_VISUAL_TARGETS = {0: "kl", 1: "regression"}


class VLBertConfig(PretrainedConfig):
    """Configuration of a two-stream ViLBERT model.

    Text stream (a BERT): `vocab_size`, `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
    `intermediate_size`, `hidden_act`, `hidden_dropout_prob`, `attention_probs_dropout_prob`,
    `max_position_embeddings`, `type_vocab_size`, `layer_norm_eps`. `task_specific_tokens` (12-in-1's
    task token, inserted after [CLS]; see `vlbert/models/task_tokens.py`), `num_task_embeddings`
    (its table's rows, 20 in the original) and `default_task_id` (the task id used when forward
    gets no `task_ids`). `num_prompt_tokens` (prompt tuning: learned tokens inserted after [CLS],
    see `vlbert/models/prompt.py`; 0 = none, as the original).

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
    region's input feature before its projection), `v_location_bands` (0: the raw 5-d box into the
    location Linear, as ViLBERT; K > 0: sin and cos of each box coordinate at K octave frequencies,
    2^k·π for k < K, so the embedding can tell near positions apart; 10·K inputs),
    `v_geometry_bias` (0: off, as ViLBERT; W > 0: an MLP of width W maps each pair of boxes, their
    centre offsets and distance, to one additive attention bias per head in every visual
    self-attention layer, as the geometry-aware attention of relation networks for detection),
    `v_geometry_prior` (0.0: that MLP starts random; a > 0: it starts with visual head 0 biased by
    -a x distance away from itself, towards the nearest other region, and head 1 by +a x
    distance, towards the furthest; the other heads start random), `vqa_text_pooling` ("first":
    the VQA head reads the text stream's first token, as ViLBERT; "mean": the mean of every text
    token's final state goes through the same pooler, so the head also reads the words that
    masked language modelling trained to gather what they name from the regions).

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
        task_specific_tokens: bool = False,
        num_task_embeddings: int = 20,
        default_task_id: int | None = None,
        num_prompt_tokens: int = 0,
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
        v_location_bands: int = 0,
        v_geometry_bias: int = 0,
        v_geometry_prior: float = 0.0,
        vqa_text_pooling: str = "first",
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
        self.task_specific_tokens = task_specific_tokens
        self.num_task_embeddings = num_task_embeddings
        self.default_task_id = default_task_id
        self.num_prompt_tokens = num_prompt_tokens
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
        self.v_location_bands = v_location_bands
        self.v_geometry_bias = v_geometry_bias
        self.v_geometry_prior = v_geometry_prior
        self.vqa_text_pooling = vqa_text_pooling
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
        if self.default_task_id is not None and not 0 <= self.default_task_id < self.num_task_embeddings:
            raise ValueError(f"default_task_id must be in [0, {self.num_task_embeddings}), got {self.default_task_id}")
        if self.fusion_method not in FUSION_METHODS:
            raise ValueError(f"fusion_method must be one of {FUSION_METHODS}, got {self.fusion_method!r}")
        if self.pooler_act not in POOLER_ACTIVATIONS:
            raise ValueError(f"pooler_act must be one of {POOLER_ACTIVATIONS}, got {self.pooler_act!r}")
        if not isinstance(self.v_location_bands, int) or self.v_location_bands < 0:
            raise ValueError(f"v_location_bands must be an integer >= 0, got {self.v_location_bands!r}")
        if not isinstance(self.v_geometry_bias, int) or self.v_geometry_bias < 0:
            raise ValueError(f"v_geometry_bias must be an integer >= 0, got {self.v_geometry_bias!r}")
        if self.v_geometry_prior and (self.v_geometry_bias < 2 or self.v_num_attention_heads < 2):
            raise ValueError("v_geometry_prior needs v_geometry_bias >= 2 and v_num_attention_heads >= 2, got "
                             f"{self.v_geometry_bias} and {self.v_num_attention_heads}")
        if self.vqa_text_pooling not in VQA_TEXT_POOLINGS:
            raise ValueError(f"vqa_text_pooling must be one of {VQA_TEXT_POOLINGS}, got {self.vqa_text_pooling!r}")
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
        """Build from an original vilbert-multi-task config dict (its JSON file, loaded). Keys that
        do not change the outputs (`ORIGINAL_HARMLESS_KEYS`) are dropped with a warning naming
        each; a key that would change the computation, or one this code does not know, is refused
        (ValueError), see `original_config_kwargs`."""
        kwargs, ignored = original_config_kwargs(original)
        if ignored:
            warnings.warn(ignored_keys_message(ignored), stacklevel=2)
        kwargs.update(overrides)
        return cls(**kwargs)


def original_config_kwargs(original: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Split an original config dict into `VLBertConfig` keyword arguments and the keys dropped
    (key -> why it changes nothing). Raises ValueError naming every key that would change the
    computation (a value vlbert does not compute, or a key it does not know)."""
    known = set(inspect.signature(VLBertConfig.__init__).parameters) - {"self", "kwargs"}
    kwargs: dict[str, Any] = {}
    ignored: dict[str, str] = {}
    refused: list[str] = []
    for key, value in original.items():
        if key in ORIGINAL_HARMLESS_KEYS:
            ignored[key] = ORIGINAL_HARMLESS_KEYS[key]
        elif key in ORIGINAL_FIXED_KEYS:
            expected, effect = ORIGINAL_FIXED_KEYS[key]
            if value != expected:
                refused.append(f"{key}={value!r} ({effect}; vlbert computes {key}={expected!r})")
            else:
                ignored[key] = f"{value!r} is what vlbert computes"
        elif key == "visual_target":
            if value not in ORIGINAL_VISUAL_TARGETS:
                refused.append(f"visual_target={value!r} (vlbert has region_objective 'kl' = 0 and 'regression' = 1)")
            else:
                kwargs["region_objective"] = ORIGINAL_VISUAL_TARGETS[value]
        elif key in known:
            kwargs[key] = value
        else:
            refused.append(f"{key}={value!r} (unknown to vlbert: it may change the computation)")
    if refused:
        raise ValueError("original config keys vlbert cannot honour: " + "; ".join(refused))
    return kwargs, ignored


def ignored_keys_message(ignored: dict[str, str]) -> str:
    """One line naming each ignored original config key and why."""
    return "original config keys ignored: " + "; ".join(f"{k} ({why})" for k, why in ignored.items())


def _register_auto_classes() -> None:
    """Let transformers' Auto classes resolve model_type "vlbert"."""
    from transformers import AutoConfig

    AutoConfig.register("vlbert", VLBertConfig, exist_ok=True)


_register_auto_classes()
