"""The options that depart from ViLBERT (docs/model.md): off by default, and each doing what it says."""

import pytest
import torch

import vlbert
from tests.helpers import pretraining_step_grads
from vlbert.config import VLBertConfig
from vlbert.models.embeddings import RegionEmbeddings
from vlbert.presets import PRESETS


def test_defaults_are_the_original_computation():
    cfg = VLBertConfig()
    assert (cfg.pooler_act, cfg.v_location_norm, cfg.v_feature_norm, cfg.fusion_method) == ("relu", False, False, "mul")
    assert cfg.v_location_bands == 0
    model = vlbert.create_model("tiny")
    names = {n for n, _ in model.named_parameters()}
    assert not any("location_LayerNorm" in n or "feature_LayerNorm" in n for n in names)
    assert model.v_embeddings.image_location_embeddings.in_features == 5  # the raw box, as the original


def test_fourier_box_features_separate_near_positions():
    from vlbert.models.embeddings import box_fourier_features

    boxes = torch.tensor([[0.10, 0.2, 0.20, 0.3, 0.01], [0.12, 0.2, 0.22, 0.3, 0.01]])  # [2, 5]: 0.02 apart in x
    fourier = box_fourier_features(boxes, 6)  # [2, 60]
    assert fourier.shape == (2, 60)
    # 5 coordinates x (sin, cos) at 6 frequencies: each pair lies on the unit circle
    pairs = fourier.view(2, 5, 2, 6)
    assert torch.allclose(pairs[:, :, 0] ** 2 + pairs[:, :, 1] ** 2, torch.ones(2, 5, 6))
    # a 0.02 shift moves the raw box by 0.028 but its Fourier features by ~10x more
    assert (fourier[0] - fourier[1]).norm() > 10 * (boxes[0] - boxes[1]).norm()
    model = vlbert.create_model("tiny", v_location_bands=6)
    assert model.v_embeddings.image_location_embeddings.in_features == 60
    with pytest.raises(ValueError, match="v_location_bands"):
        VLBertConfig(**PRESETS["tiny"], v_location_bands=-1)


def test_unknown_pooler_activation_is_refused():
    with pytest.raises(ValueError, match="pooler_act"):
        VLBertConfig(**PRESETS["tiny"], pooler_act="gelu")


def test_tanh_pooler_gives_signed_bounded_vectors(tiny_inputs):
    model = vlbert.create_model("tiny", pooler_act="tanh").eval()
    out = model(**tiny_inputs.kwargs())
    for pooled in (out.pooled_text, out.pooled_visual):
        assert (pooled.abs() < 1).all() and (pooled < 0).any() and (pooled > 0).any()


def _location_spread(**options) -> float:
    """How much moving the boxes moves the initialised model's region embedding, against changing
    the features (positive features, as pooled detector features or pixel crops are)."""
    torch.manual_seed(0)
    emb = vlbert.create_model("tiny", **options).v_embeddings.eval()
    features = torch.rand(8, 6, emb.image_embeddings.in_features)  # [B, R, Df]
    boxes = torch.rand(8, 6, 5)  # [B, R, 5]
    moved = emb(features, boxes.flip(0)) - emb(features, boxes)  # same features, other boxes
    changed = emb(features.flip(0), boxes) - emb(features, boxes)  # same boxes, other features
    return (moved.norm() / changed.norm()).item()


def test_location_norm_makes_the_box_weigh_like_the_feature():
    # the quickstart's 363-d crops: measured 0.13 (one LayerNorm over both) against 1.21 (apart)
    joint = _location_spread(v_feature_size=363)
    apart = _location_spread(v_feature_size=363, v_location_norm=True)
    assert joint < 0.25  # the original: a 5-d box drowned by a wide feature under one LayerNorm
    assert apart > 0.8 and apart > 5 * joint


def test_feature_norm_standardises_each_region_input():
    config = VLBertConfig(**PRESETS["tiny"], v_feature_norm=True)
    torch.manual_seed(0)
    emb = RegionEmbeddings(config).eval()
    features, boxes = torch.rand(2, 4, config.v_feature_size), torch.rand(2, 4, 5)
    # shifting and scaling a region's feature vector leaves its embedding unchanged
    assert torch.allclose(emb(3 * features + 1, boxes), emb(features, boxes), atol=1e-5)
    plain = RegionEmbeddings(VLBertConfig(**PRESETS["tiny"])).eval()
    assert not torch.allclose(plain(3 * features + 1, boxes), plain(features, boxes), atol=1e-3)


def test_every_parameter_gets_a_gradient_with_all_options(tiny_inputs):
    model = vlbert.create_model("tiny", task="pretraining", pooler_act="tanh", v_location_norm=True,
                                v_feature_norm=True, fusion_method="sum", v_location_bands=4).train()
    masked = torch.zeros(3, 5, dtype=torch.bool)
    masked[:, 1] = True
    assert pretraining_step_grads(model, tiny_inputs.kwargs(), masked) == []


def test_options_survive_save_and_load(tmp_path, tiny_inputs):
    model = vlbert.create_model("tiny", task="vqa", pooler_act="tanh", v_location_norm=True, v_feature_norm=True,
                                v_location_bands=3).eval()
    model.save_pretrained(tmp_path)
    loaded = vlbert.create_model(str(tmp_path), task="vqa").eval()
    assert loaded.config.v_location_norm and loaded.config.v_feature_norm and loaded.config.pooler_act == "tanh"
    assert loaded.config.v_location_bands == 3
    with torch.no_grad():
        assert torch.equal(model(**tiny_inputs.kwargs()).logits, loaded(**tiny_inputs.kwargs()).logits)


def _location_cosine(bands: int, first: tuple[float, float], second: tuple[float, float]) -> float:
    """Cosine of the initialised quickstart model's normalised location embeddings of two boxes of
    the same size (side 0.12) whose top-left corners are `first` and `second`."""
    from vlbert.quickstart.plan import SMALL_MODEL

    torch.manual_seed(0)
    emb = vlbert.create_model("tiny", **{**SMALL_MODEL, "v_location_bands": bands}).v_embeddings.eval()
    boxes = torch.tensor([[x, y, x + 0.12, y + 0.12, 0.12**2] for x, y in (first, second)])[None]  # [1, 2, 5]
    # zero features: what is left is the location term (and the feature term's constant)
    moved = emb(torch.zeros(1, 2, emb.image_embeddings.in_features), boxes)[0]  # [2, Dv]
    return torch.nn.functional.cosine_similarity(moved[0], moved[1], 0).item()


def test_fourier_bands_tell_apart_boxes_the_layernormed_raw_box_confuses():
    # LayerNorm(W · box) with a zero bias ignores the box vector's length: a box near the top-left
    # corner and one near the bottom-right lie on one ray from the origin and embed almost alike
    # (measured 0.97 at init); 3 Fourier bands separate them (0.05)
    raw = _location_cosine(0, (0.1, 0.1), (0.7, 0.7))
    fourier = _location_cosine(3, (0.1, 0.1), (0.7, 0.7))
    assert raw > 0.9 and fourier < 0.4


def test_mean_text_pooling_reads_every_real_token_through_the_same_pooler(tiny_inputs):
    from vlbert.models.heads import fuse_pooled

    assert VLBertConfig().vqa_text_pooling == "first"  # the original: the first token
    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="vqa", vqa_text_pooling="mean").eval()
    inputs = tiny_inputs.kwargs()
    inputs["attention_mask"] = inputs["attention_mask"].clone()
    inputs["attention_mask"][0, -2:] = False  # row 0 has two padding tokens
    with torch.no_grad():
        out = model(**inputs)
        states = out.backbone
        real = inputs["attention_mask"][0]
        mean = states.text_hidden[0, real].mean(0)  # [D] over the real tokens only
        pooled = model.vlbert.t_pooler(mean[None, None])  # [1, Dbi]
        by_hand = model.vqa_head(fuse_pooled(pooled, states.pooled_visual[:1], model.config.fusion_method))
        first = vlbert.create_model("tiny", task="vqa").eval()
        first.load_state_dict(model.state_dict())
        other = first(**inputs).logits
    torch.testing.assert_close(out.logits[:1], by_hand, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out.logits, other)  # the first token alone reads otherwise
    with pytest.raises(ValueError, match="vqa_text_pooling"):
        VLBertConfig(**PRESETS["tiny"], vqa_text_pooling="max")
