"""Behaviour of the backbone and task models on tiny configs."""

import pytest
import torch

import vlbert
from tests.helpers import make_inputs, pretraining_step_grads
from vlbert.losses import caption_loss, vqa_loss

torch.manual_seed(0)


def pixel_inputs(model, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    size = model.config.image_size
    ids = torch.randint(1000, 2000, (batch, 6), generator=g)
    return dict(input_ids=ids, pixel_values=torch.randn(batch, 3, size, size, generator=g))


@pytest.mark.parametrize("task", ["backbone", "pretraining", "vqa", "retrieval", "captioning"])
def test_output_shapes_region_inputs(task, tiny_inputs):
    model = vlbert.create_model("tiny", task=task).eval()
    out = model(**tiny_inputs.kwargs())
    B, L = tiny_inputs.input_ids.shape
    R = tiny_inputs.region_features.shape[1] + 1  # + IMG token
    cfg = model.config
    backbone = out if task == "backbone" else out.backbone
    assert backbone.text_hidden.shape == (B, L, cfg.hidden_size)
    assert backbone.visual_hidden.shape == (B, R, cfg.v_hidden_size)
    assert backbone.pooled_text.shape == backbone.pooled_visual.shape == (B, cfg.bi_hidden_size)
    assert (backbone.pooled_text >= 0).all()  # ReLU pooler
    if task == "pretraining":
        assert out.mlm_logits.shape == (B, L, cfg.vocab_size)
        assert out.region_logits.shape == (B, R, cfg.v_target_size)
        assert out.itm_logits.shape == (B, 2)
        assert out.text_embed.shape == out.image_embed.shape == (B, cfg.itc_dim)
        assert torch.allclose(out.text_embed.norm(dim=-1), torch.ones(B))
    if task == "vqa":
        assert out.logits.shape == (B, cfg.num_answers)
    if task == "captioning":
        assert out.logits.shape == (B, L, cfg.vocab_size)


@pytest.mark.parametrize("name, grid", [("tiny-vit", 16), ("tiny-cnn", 4)])
def test_pixel_encoders_give_located_regions(name, grid):
    model = vlbert.create_model(name, task="pretraining").eval()
    inputs = pixel_inputs(model)
    out = model(**inputs)
    assert out.backbone.visual_hidden.shape[1] == grid + 1
    # regression objective: the region head predicts the encoder feature
    assert out.region_logits.shape[-1] == model.config.v_feature_size
    regions = model.vlbert.encode_regions(pixel_values=inputs["pixel_values"])
    side = int(grid**0.5)
    assert torch.allclose(regions.boxes[0, 0], torch.tensor([0, 0, 1 / side, 1 / side]))
    assert torch.allclose(regions.boxes[0, -1], torch.tensor([1 - 1 / side, 1 - 1 / side, 1, 1]))


def test_every_parameter_gets_a_gradient_regions(tiny_inputs):
    model = vlbert.create_model("tiny", task="pretraining").train()
    masked = torch.zeros(3, 5, dtype=torch.bool)
    masked[:, 1] = True
    assert pretraining_step_grads(model, tiny_inputs.kwargs(), masked) == []


@pytest.mark.parametrize("name, grid", [("tiny-vit", 16), ("tiny-cnn", 4)])
def test_every_parameter_gets_a_gradient_pixels(name, grid):
    # timm ResNets zero-init each block's last BN scale, which blocks gradients into the block at
    # step 0 by design; switch that off so the test sees every path.
    extra = dict(image_model_kwargs=dict(layers=[1, 1, 1, 1], zero_init_last=False)) if name == "tiny-cnn" else {}
    model = vlbert.create_model(name, task="pretraining", **extra).train()
    masked = torch.zeros(2, grid, dtype=torch.bool)
    masked[:, 0] = True
    assert pretraining_step_grads(model, pixel_inputs(model), masked) == []


def test_frozen_image_encoder_gets_no_gradient_and_stays_in_eval():
    model = vlbert.create_model("tiny-cnn", task="pretraining", freeze_image_encoder=True).train()
    encoder = model.vlbert.image_encoder
    assert not encoder.model.training
    masked = torch.zeros(2, 4, dtype=torch.bool)
    masked[:, 0] = True
    no_grad = pretraining_step_grads(model, pixel_inputs(model), masked)
    assert no_grad == []  # frozen parameters are excluded (requires_grad False)
    assert all(p.grad is None for p in encoder.parameters())


def test_padding_leaves_real_positions_unchanged():
    model = vlbert.create_model("tiny", task="pretraining").eval()
    base = make_inputs(batch=2, length=7, regions=4)
    padded = make_inputs(batch=2, length=11, regions=9, seed=1)  # random junk in the pads
    padded.input_ids[:, :7] = base.input_ids
    padded.attention_mask[:, 7:] = False
    padded.region_features[:, :4] = base.region_features
    padded.region_boxes[:, :4] = base.region_boxes
    padded.region_mask[:, 4:] = False
    with torch.no_grad():
        a = model(**base.kwargs())
        b = model(**padded.kwargs())
    torch.testing.assert_close(b.backbone.text_hidden[:, :7], a.backbone.text_hidden, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.backbone.visual_hidden[:, :5], a.backbone.visual_hidden, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.itm_logits, a.itm_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.text_embed, a.text_embed, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.image_embed, a.image_embed, atol=1e-5, rtol=0)


def test_masked_regions_equal_zeroed_features(tiny_inputs):
    model = vlbert.create_model("tiny").eval()
    masked = torch.zeros(3, 5, dtype=torch.bool)
    masked[0, 2] = masked[2, 0] = True
    zeroed = tiny_inputs.kwargs()
    zeroed["region_features"] = tiny_inputs.region_features.masked_fill(masked[..., None], 0.0)
    with torch.no_grad():
        a = model(**tiny_inputs.kwargs(), masked_regions=masked)
        b = model(**zeroed)
        c = model(**tiny_inputs.kwargs())
    torch.testing.assert_close(a.visual_hidden, b.visual_hidden)
    assert not torch.allclose(a.visual_hidden, c.visual_hidden)
    torch.testing.assert_close(a.visual_features[:, 1:], tiny_inputs.region_features)  # unmasked targets


def test_caption_mask_hides_later_tokens(tiny_inputs):
    model = vlbert.create_model("tiny", task="captioning").eval()
    changed = tiny_inputs.kwargs()
    changed["input_ids"] = tiny_inputs.input_ids.clone()
    changed["input_ids"][:, 5:] = 7
    with torch.no_grad():
        a = model(**tiny_inputs.kwargs()).logits
        b = model(**changed).logits
    torch.testing.assert_close(a[:, :5], b[:, :5], atol=1e-6, rtol=0)
    assert not torch.allclose(a[:, 5:], b[:, 5:])
    # ... while the bidirectional model lets them flow everywhere
    bidir = vlbert.create_model("tiny", task="pretraining").eval()
    with torch.no_grad():
        assert not torch.allclose(bidir(**tiny_inputs.kwargs()).mlm_logits[:, :5], bidir(**changed).mlm_logits[:, :5])


def test_layer_order_follows_the_original_interleaving(tiny_inputs):
    model = vlbert.create_model(
        "tiny", num_hidden_layers=12, v_num_hidden_layers=6,
        t_biattention_id=[6, 7, 8, 9, 10, 11], v_biattention_id=[0, 1, 2, 3, 4, 5],
    ).eval()
    calls = []
    enc = model.encoder
    for prefix, layers in (("t", enc.layer), ("v", enc.v_layer), ("c", enc.c_layer)):
        for i, layer in enumerate(layers):
            layer.register_forward_hook(lambda *_, name=f"{prefix}{i}": calls.append(name))
    model(**tiny_inputs.kwargs())
    expected = [f"t{i}" for i in range(6)] + ["c0"]
    for k in range(1, 6):
        expected += [f"t{5 + k}", f"v{k - 1}", f"c{k}"]
    expected += ["t11", "v5"]
    assert calls == expected


def test_task_losses_have_known_values():
    logits = torch.zeros(2, 3)
    scores = torch.tensor([[1.0, 0.0, 0.3], [0.0, 0.0, 0.0]])
    # BCE(0 logit) = log 2 per answer, summed over 3 answers
    assert vqa_loss(logits, scores).item() == pytest.approx(3 * torch.log(torch.tensor(2.0)).item())
    vocab = 5
    logits = torch.zeros(1, 4, vocab)
    ids = torch.tensor([[1, 2, 3, 0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    assert caption_loss(logits, ids, mask).item() == pytest.approx(torch.log(torch.tensor(5.0)).item())


def test_mlm_scored_at_masked_positions_only_matches_scoring_every_token(tiny_inputs):
    """#15: the vocabulary is scored at the M masked tokens only; same loss and gradients as the
    original's scores at every token (fp32, one thread-independent forward each)."""
    from vlbert.losses import mlm_loss

    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="pretraining").eval()
    inputs = tiny_inputs.kwargs()
    B, L = inputs["input_ids"].shape
    labels = torch.full((B, L), -100)
    labels[0, 1], labels[1, 2], labels[2, 1:3] = 5, 6, 7
    text, image = model.vlbert.encode_pair(**inputs)
    full = model.forward_states(text, image)
    scored = model.forward_states(text, image, mlm_positions=labels != -100)
    assert full.mlm_logits.shape == (B, L, model.config.vocab_size)
    assert scored.mlm_logits.shape == (4, model.config.vocab_size)
    torch.testing.assert_close(scored.mlm_logits, full.mlm_logits[labels != -100])
    grads = []
    for out in (full, scored):
        model.zero_grad()
        mlm_loss(out.mlm_logits, labels).backward(retain_graph=True)
        grads.append(model.mlm_head.transform.dense.weight.grad.clone())
    torch.testing.assert_close(mlm_loss(scored.mlm_logits, labels), mlm_loss(full.mlm_logits, labels))
    torch.testing.assert_close(grads[0], grads[1])
    with pytest.raises(ValueError, match="masked positions"):
        mlm_loss(scored.mlm_logits[:3], labels)
