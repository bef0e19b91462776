"""`v_geometry_bias`: a per-head attention bias from each pair of boxes in the visual stream."""

import math

import pytest
import torch

import vlbert
from tests.helpers import pretraining_step_grads
from vlbert.config import VLBertConfig
from vlbert.models.geometry import pairwise_box_geometry
from vlbert.presets import PRESETS


def test_pair_features_hand_computed():
    # two 0.2 x 0.2 boxes centred at (0.1, 0.1) and (0.4, 0.5), and a 0.4 x 0.1 one at (0.5, 0.5)
    boxes = torch.tensor([[[0.0, 0.0, 0.2, 0.2, 0.04], [0.3, 0.4, 0.5, 0.6, 0.04], [0.3, 0.45, 0.7, 0.55, 0.04]]])
    pairs = pairwise_box_geometry(boxes, eps=0.0)  # [1, 3, 3, 7]
    assert pairs.shape == (1, 3, 3, 7)
    dx, dy, adx, ady, dist, log_w, log_h = pairs[0, 0, 1]  # key 1 seen from query 0
    assert (dx.item(), dy.item()) == pytest.approx((0.3, 0.4))
    assert (adx.item(), ady.item(), dist.item()) == pytest.approx((0.3, 0.4, 0.5))
    assert (log_w.item(), log_h.item()) == pytest.approx((0.0, 0.0), abs=1e-6)
    assert pairs[0, 1, 0, :2].tolist() == pytest.approx([-0.3, -0.4])  # the other way round
    assert pairs[0, 1, 1].tolist() == pytest.approx([0.0] * 7, abs=1e-6)  # a box from itself
    assert pairs[0, 0, 2, 5:].tolist() == pytest.approx([math.log(2.0), math.log(0.5)])


def test_off_by_default():
    assert VLBertConfig().v_geometry_bias == 0
    model = vlbert.create_model("tiny")
    assert model.v_geometry is None and not any("geometry" in n for n, _ in model.named_parameters())
    with pytest.raises(ValueError, match="v_geometry_bias"):
        VLBertConfig(**PRESETS["tiny"], v_geometry_bias=-1)


def test_every_parameter_gets_a_gradient(tiny_inputs):
    model = vlbert.create_model("tiny", task="pretraining", v_geometry_bias=8).train()
    masked = torch.zeros(3, 5, dtype=torch.bool)
    masked[:, 1] = True
    assert pretraining_step_grads(model, tiny_inputs.kwargs(), masked) == []


def test_the_bias_moves_the_answer_and_padding_stays_unseen(tiny_inputs):
    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="vqa", v_geometry_bias=8).eval()
    inputs = tiny_inputs.kwargs()
    with torch.no_grad():
        base = model(**inputs).logits
        # the boxes reach the visual self-attention through the bias alone when the location
        # embedding ignores them: zero its weights, make the bias large, then move the boxes
        model.vlbert.v_embeddings.image_location_embeddings.weight.zero_()
        torch.nn.init.normal_(model.vlbert.v_geometry.mlp[2].weight, std=3.0)
        still = model(**inputs).logits
        moved = model(**{**inputs, "region_boxes": inputs["region_boxes"].flip(1)}).logits
        assert not torch.allclose(still, moved, atol=1e-4)
        model.vlbert.v_geometry = None  # the same weights without the bias: the boxes are invisible
        torch.testing.assert_close(model(**inputs).logits, model(**{**inputs, "region_boxes": inputs["region_boxes"].flip(1)}).logits)
    # a padded region is never attended to, whatever its features and box
    model = vlbert.create_model("tiny", task="vqa", v_geometry_bias=8).eval()
    mask = torch.ones_like(inputs["region_mask"])
    mask[:, -1] = False
    changed = {**inputs, "region_mask": mask, "region_features": inputs["region_features"].clone(),
               "region_boxes": inputs["region_boxes"].clone()}
    with torch.no_grad():
        first = model(**{**inputs, "region_mask": mask}).logits
        changed["region_features"][:, -1] += 5.0
        changed["region_boxes"][:, -1] = torch.tensor([0.0, 0.0, 0.9, 0.9])
        torch.testing.assert_close(model(**changed).logits, first)
    assert base.shape == first.shape


def test_survives_save_and_load(tmp_path, tiny_inputs):
    model = vlbert.create_model("tiny", task="vqa", v_geometry_bias=8).eval()
    model.save_pretrained(tmp_path)
    loaded = vlbert.create_model(str(tmp_path), task="vqa").eval()
    assert loaded.config.v_geometry_bias == 8
    with torch.no_grad():
        assert torch.equal(model(**tiny_inputs.kwargs()).logits, loaded(**tiny_inputs.kwargs()).logits)


def test_distance_prior_starts_heads_at_the_nearest_other_and_the_furthest_region():
    model = vlbert.create_model("tiny", task="vqa", v_geometry_bias=8, v_geometry_prior=10.0)
    centres = torch.tensor([[[0.1, 0.1], [0.25, 0.1], [0.9, 0.9], [0.5, 0.6]]])  # [1, 4, 2]
    boxes = torch.cat([centres - 0.03, centres + 0.03, torch.full((1, 4, 1), 0.0036)], -1)  # [1, 4, 5]
    with torch.no_grad():
        bias = model.vlbert.v_geometry.mlp(pairwise_box_geometry(boxes))[0]  # [4, 4, heads]
    nearest_other, furthest = [1, 0, 3, 2], [2, 2, 0, 0]
    assert bias[..., 0].argmax(-1).tolist() == nearest_other  # head 0: not itself, the closest
    assert bias[..., 1].argmax(-1).tolist() == furthest
    distance = pairwise_box_geometry(boxes)[0, ..., 4]
    torch.testing.assert_close(bias[..., 1], 10.0 * distance)  # +10 x distance exactly
    off = ~torch.eye(4, dtype=torch.bool)
    torch.testing.assert_close(bias[..., 0][off], -10.0 * distance[off])
    with pytest.raises(ValueError, match="v_geometry_prior"):
        VLBertConfig(**PRESETS["tiny"], v_geometry_prior=10.0)  # no geometry MLP to start


def test_distance_prior_is_only_a_start_loaded_weights_win(tmp_path):
    model = vlbert.create_model("tiny", task="vqa", v_geometry_bias=8, v_geometry_prior=10.0)
    with torch.no_grad():
        model.vlbert.v_geometry.mlp[2].weight.add_(0.5)  # as training would move it
    model.save_pretrained(tmp_path)
    loaded = vlbert.create_model(str(tmp_path), task="vqa")
    assert loaded.config.v_geometry_prior == 10.0
    torch.testing.assert_close(loaded.vlbert.v_geometry.mlp[2].weight, model.vlbert.v_geometry.mlp[2].weight, rtol=0, atol=0)


def test_geometry_heads_tool_finds_the_prior_heads(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("geometry_heads", root / "tools" / "geometry_heads.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    torch.manual_seed(0)
    vlbert.create_model("tiny", task="pretraining", v_geometry_bias=8, v_geometry_prior=10.0).save_pretrained(tmp_path / "m")
    assert tool.main([str(tmp_path / "m"), "--layouts", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    shares = [[float(word.rstrip(",")) for word in line.split()[-4::3]] for line in lines]  # [nearest, furthest]
    assert len(shares) == 2  # the tiny preset's two visual heads
    assert shares[0][0] > 0.9 and shares[0][1] == 0.0  # the prior: head 0 on the nearest other region
    assert shares[1][0] == 0.0 and shares[1][1] > 0.9  # head 1 on the furthest
    vlbert.create_model("tiny", task="pretraining").save_pretrained(tmp_path / "plain")
    try:
        tool.main([str(tmp_path / "plain")])
    except SystemExit as error:
        assert "has no geometry bias" in str(error)
    else:
        raise AssertionError("a model without a geometry bias was accepted")
