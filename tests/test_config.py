import pytest
import torch

import vlbert
from vlbert import VLBertConfig
from vlbert.weights import vlbert_to_original

# The original config file, config/bert_base_6layer_6conect.json of vilbert-multi-task.
ORIGINAL_BASE = {
    "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
    "max_position_embeddings": 512, "num_attention_heads": 12, "num_hidden_layers": 12,
    "type_vocab_size": 2, "vocab_size": 30522, "v_feature_size": 2048, "v_target_size": 1601,
    "v_hidden_size": 1024, "v_num_hidden_layers": 6, "v_num_attention_heads": 8,
    "v_intermediate_size": 1024, "bi_hidden_size": 1024, "bi_num_attention_heads": 8,
    "bi_intermediate_size": 1024, "bi_attention_type": 1, "v_attention_probs_dropout_prob": 0.1,
    "v_hidden_act": "gelu", "v_hidden_dropout_prob": 0.1, "v_initializer_range": 0.02,
    "v_biattention_id": [0, 1, 2, 3, 4, 5], "t_biattention_id": [6, 7, 8, 9, 10, 11],
    "pooling_method": "mul",
}


def test_list_models_has_reference_and_tiny():
    names = vlbert.list_models()
    assert {"vilbert-base", "tiny", "tiny-vit", "tiny-cnn"} <= set(names)


def test_original_config_file_equals_vilbert_base_preset():
    from_file = VLBertConfig.from_original_dict(ORIGINAL_BASE)
    preset = vlbert.create_config("vilbert-base")
    for key in ORIGINAL_BASE:
        if hasattr(preset, key) and key not in ("pooling_method", "bi_intermediate_size", "bi_attention_type"):
            assert getattr(from_file, key) == getattr(preset, key), key
    assert not hasattr(from_file, "pooling_method")  # never read by the original either


def test_vilbert_base_parameter_count_matches_original():
    model = vlbert.create_model("vilbert-base")
    ours = sum(p.numel() for p in model.parameters())
    assert ours == 235_705_856  # without the never-used q_dense weights
    exported = vlbert_to_original(model.state_dict(), model.config.v_hidden_size, model.config.hidden_size)
    assert sum(t.numel() for t in exported.values()) == 246_726_656  # the original backbone, exactly


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(t_biattention_id=[2, 3], v_biattention_id=[0]), "same length"),
        (dict(t_biattention_id=[3, 2], v_biattention_id=[0, 1]), "non-decreasing"),
        (dict(t_biattention_id=[2, 9], v_biattention_id=[0, 1]), "non-decreasing"),
        (dict(bi_num_attention_heads=5), "not divisible"),
        (dict(fusion_method="concat"), "fusion_method"),
        (dict(image_encoder="vit", image_model=None), "image_model"),
        (dict(image_encoder="detr"), "image_encoder"),
        (dict(region_objective="nce"), "region_objective"),
    ],
)
def test_bad_config_values_raise_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        vlbert.create_config("tiny", **overrides)


def test_unknown_model_and_task_names():
    with pytest.raises(ValueError, match="unknown model 'vilbert-huge'"):
        vlbert.create_model("vilbert-huge")
    with pytest.raises(ValueError, match="unknown task"):
        vlbert.create_model("tiny", task="nlvr")


def test_config_json_round_trip(tmp_path):
    config = vlbert.create_config("tiny-vit")
    config.save_pretrained(tmp_path)
    loaded = VLBertConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert torch.tensor(loaded.t_biattention_id).tolist() == [2, 3]
