"""Named configurations. `vilbert-base` is the original `bert_base_6layer_6conect`."""

from __future__ import annotations

from typing import Any

_TINY: dict[str, Any] = dict(
    hidden_size=32,
    num_hidden_layers=4,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=128,
    v_feature_size=48,
    v_hidden_size=32,
    v_num_hidden_layers=2,
    v_num_attention_heads=2,
    v_intermediate_size=64,
    v_target_size=10,
    bi_hidden_size=32,
    bi_num_attention_heads=2,
    t_biattention_id=[2, 3],
    v_biattention_id=[0, 1],
    itc_dim=16,
    num_answers=10,
)

PRESETS: dict[str, dict[str, Any]] = {
    # Lu et al. 2019: BERT-base text stream, 6-layer 1024-d visual stream, 6 co-attention blocks
    # attached to text layers 6..11 and visual layers 0..5, region features from a VG detector.
    "vilbert-base": {},
    # The same streams over a timm ViT-B/16's patch tokens (196 regions at 224 px).
    "vilbert-vit-b16": dict(image_encoder="vit", image_model="vit_base_patch16_224", image_size=224),
    # The same streams over a ResNet-50's last 7x7 grid (2048-d cells, like detector features).
    "vilbert-resnet50": dict(image_encoder="cnn", image_model="resnet50", image_size=224),
    # Small models for tests and CPU runs.
    "tiny": _TINY,
    "tiny-vit": dict(
        _TINY,
        image_encoder="vit",
        image_model="vit_tiny_patch16_224",
        image_size=32,
        image_model_kwargs=dict(patch_size=8, embed_dim=32, depth=2, num_heads=2),
    ),
    "tiny-cnn": dict(
        _TINY,
        image_encoder="cnn",
        image_model="resnet18",
        image_size=64,
        image_model_kwargs=dict(layers=[1, 1, 1, 1]),
    ),
}
