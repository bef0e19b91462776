"""Recording the co-attention probabilities (`vlbert.models.attention_maps`): the recording
changes no output, reproduces what the fused attention computed, and leaves no hook behind; the
reduction to one weight per region and the heat map it draws have known values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_inputs

import vlbert
from vlbert.demo.heatmap import RegionWeight, heat_array
from vlbert.models.attention_maps import CoAttentionMaps, record_coattention, text_to_region_weights
from vlbert.models.coattention import CoAttention, _merge_heads


@pytest.fixture
def vqa_model():
    torch.manual_seed(0)
    return vlbert.create_model("tiny", task="vqa").eval()


def _padded_inputs():
    inputs = make_inputs(batch=2, regions=5)
    inputs.region_mask[1, 3:] = False  # image 1 has 3 real regions
    inputs.attention_mask[0, 7:] = False  # text 0 has 7 real tokens
    return inputs


def test_recording_changes_no_output_and_removes_its_hooks(vqa_model):
    inputs = _padded_inputs()
    torch.set_num_threads(1)  # the same kernels in the same order: exact equality
    with torch.no_grad():
        plain = vqa_model(**inputs.kwargs()).logits
        with record_coattention(vqa_model) as maps:
            recorded = vqa_model(**inputs.kwargs()).logits
        after = vqa_model(**inputs.kwargs()).logits
    assert torch.equal(plain, recorded) and torch.equal(plain, after)
    blocks = [m for m in vqa_model.modules() if isinstance(m, CoAttention)]
    assert len(blocks) == 2 and all(not m._forward_hooks for m in blocks)
    assert len(maps.text_to_visual) == 2 and maps.text_to_visual[0].shape == (2, 2, 9, 6)  # [B, H, L, 1 + N]
    assert maps.visual_to_text[0].shape == (2, 2, 6, 9)


def test_recorded_probabilities_are_what_the_fused_attention_used(vqa_model):
    inputs = _padded_inputs()
    seen = []
    block = next(m for m in vqa_model.modules() if isinstance(m, CoAttention))
    handle = block.register_forward_hook(lambda mod, args, out: seen.append((args, out)))
    with torch.no_grad(), record_coattention(vqa_model) as maps:
        vqa_model(**inputs.kwargs())
    handle.remove()
    (visual, text, _), (v_ctx, t_ctx) = seen[0]
    with torch.no_grad():
        _, _, vv = block._heads(block.v_qkv(visual))  # [B, H, R, Dh]
        _, _, tv = block._heads(block.t_qkv(text))  # [B, H, L, Dh]
    torch.testing.assert_close(_merge_heads(maps.text_to_visual[0] @ vv), t_ctx, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(_merge_heads(maps.visual_to_text[0] @ tv), v_ctx, atol=1e-5, rtol=1e-5)
    probs = maps.text_to_visual[0]  # [B, H, L, 1 + N]
    assert torch.all(probs[1, :, :, 4:] == 0)  # image 1's padded regions get nothing
    torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))
    assert torch.all(maps.visual_to_text[0][0, :, :, 7:] == 0)  # nor text 0's padded tokens


def test_recording_a_model_without_coattention_is_an_error():
    with pytest.raises(ValueError, match="Linear has no co-attention block"):
        with record_coattention(torch.nn.Linear(2, 2)):
            pass


def test_region_weights_average_blocks_heads_and_real_tokens():
    # one image, 1 head, 2 tokens (the second padding), IMG token + 2 regions, 2 blocks
    first = torch.tensor([[[[0.2, 0.6, 0.2], [0.0, 0.0, 1.0]]]])  # [1, 1, 2, 3]
    second = torch.tensor([[[[0.6, 0.2, 0.2], [0.0, 1.0, 0.0]]]])
    maps = CoAttentionMaps(text_to_visual=[first, second])
    mask = torch.tensor([[True, False]])
    # mean over blocks of the real token: [0.4, 0.4, 0.2]; without the IMG token, renormalised
    torch.testing.assert_close(text_to_region_weights(maps, mask, skip_global=True), torch.tensor([[2 / 3, 1 / 3]]))
    torch.testing.assert_close(text_to_region_weights(maps, mask, skip_global=False), torch.tensor([[0.4, 0.4, 0.2]]))
    with pytest.raises(ValueError, match="no co-attention was recorded"):
        text_to_region_weights(CoAttentionMaps(), mask, skip_global=True)


def test_heat_array_adds_each_weight_over_its_box():
    regions = [RegionWeight([0.0, 0.0, 0.5, 0.5], 0.25), RegionWeight([0.25, 0.25, 1.0, 1.0], 0.75)]
    heat = heat_array(regions, 4, 4)
    expected = np.array([[0.25, 0.25, 0, 0], [0.25, 1.0, 0.75, 0.75], [0, 0.75, 0.75, 0.75], [0, 0.75, 0.75, 0.75]])
    np.testing.assert_allclose(heat, expected / 1.0)
