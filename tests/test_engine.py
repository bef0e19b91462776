"""The training engine: objectives, schedule, overfitting, exact resume, non-finite guard."""

import copy
import math

import pytest
import torch

import vlbert
from tests.helpers import pretrain_batch, vqa_batch
from vlbert.engine.objectives import OBJECTIVES, ObjectiveConfig, negative_pairs
from vlbert.engine.optim import OptimConfig, lr_factor, param_groups
from vlbert.engine.trainer import NonFiniteLoss, TrainConfig, Trainer


def fixed(batch):
    return lambda epoch, skip: iter([batch] * (3 - skip))


def test_lr_schedule_values():
    assert lr_factor(0, 4, 20, "linear") == pytest.approx(0.25)
    assert lr_factor(3, 4, 20, "linear") == pytest.approx(1.0)
    assert lr_factor(12, 4, 20, "linear") == pytest.approx(0.5)
    assert lr_factor(12, 4, 20, "cosine") == pytest.approx(0.5)
    assert lr_factor(8, 4, 20, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(5, 0, 10, "step")


def test_param_groups_split_backbone_heads_and_decay():
    model = vlbert.create_model("tiny", task="vqa")
    groups = param_groups(model, OptimConfig(lr=1e-4, head_lr=1e-3, weight_decay=0.05))
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    head = {id(p) for p in model.vqa_head.parameters()}
    for g in groups:
        is_head = any(id(p) in head for p in g["params"])
        assert g["lr"] == (1e-3 if is_head else 1e-4)
        assert all(p.ndim >= 2 for p in g["params"]) == (g["weight_decay"] == 0.05)


def test_negatives_skip_false_negatives_and_follow_similarity():
    batch = pretrain_batch(batch=4)
    batch.image_ids = ["a", "b", "c", "a"]  # rows 0 and 3 show the same image
    batch.texts = ["x", "y", "y", "z"]  # rows 1 and 2 have an identical caption
    text_embed = torch.eye(4)
    image_embed = torch.eye(4)
    image_embed[0, 1] = image_embed[2, 0] = 3.0  # image 0 is close to caption 1, image 2 to caption 0
    g = torch.Generator().manual_seed(0)
    for mode in ("hard", "random"):
        for _ in range(50):
            t, i = negative_pairs(batch, text_embed, image_embed, mode, g)
            for text_row, image_row in zip(t.tolist(), i.tolist()):
                assert batch.image_ids[text_row] != batch.image_ids[image_row]
                assert batch.texts[text_row] != batch.texts[image_row] or text_row == image_row
                assert text_row != image_row
    picks = [negative_pairs(batch, text_embed, image_embed, "hard", g)[0][0].item() for _ in range(200)]
    assert sum(p == 1 for p in picks) / len(picks) > 0.5  # image 0's most similar valid caption


def test_negative_fraction_keeps_a_random_subset_of_the_pairs():
    batch = pretrain_batch(batch=8)
    batch.image_ids = [str(i) for i in range(8)]
    batch.texts = [f"caption {i}" for i in range(8)]
    embed = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    every, _ = negative_pairs(batch, embed, embed, "random", torch.Generator().manual_seed(0))
    assert len(every) == 16  # a caption for each image and an image for each caption
    seen = set()
    for seed in range(20):
        t, i = negative_pairs(batch, embed, embed, "random", torch.Generator().manual_seed(seed), fraction=0.25)
        assert len(t) == len(i) == 4
        assert all(text_row != image_row for text_row, image_row in zip(t.tolist(), i.tolist()))
        seen |= {(text_row, image_row) for text_row, image_row in zip(t.tolist(), i.tolist())}
    assert len(seen) > 8  # which pairs are kept changes from draw to draw
    with pytest.raises(ValueError, match="itm_negative_fraction"):
        ObjectiveConfig(itm_negative_fraction=0.0)


@pytest.mark.parametrize("task, make", [("pretraining", pretrain_batch), ("vqa", vqa_batch)])
def test_model_overfits_a_fixed_batch(task, make, tmp_path):
    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task=task, hidden_dropout_prob=0.0, v_hidden_dropout_prob=0.0,
                                attention_probs_dropout_prob=0.0, v_attention_probs_dropout_prob=0.0)
    batch = make()
    step = lambda m, b: OBJECTIVES[task](m, b, ObjectiveConfig(negatives="random"))  # noqa: E731
    cfg = TrainConfig(max_steps=120, optim=OptimConfig(lr=2e-3, warmup_steps=5, schedule="constant"),
                      progress=False, log_every=1)
    state = Trainer(model, step, cfg, tmp_path, device="cpu").fit(fixed(batch))
    losses = [h["loss"] for h in state.history if "loss" in h]
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


def _run(tmp_path, steps, resume=False, save_every=0):
    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="pretraining")
    batches = [pretrain_batch(seed=i) for i in range(5)]
    make = lambda epoch, skip: iter(batches[skip:])  # noqa: E731
    step = lambda m, b: OBJECTIVES["pretraining"](m, b, ObjectiveConfig())  # noqa: E731
    cfg = TrainConfig(max_steps=steps, save_every=save_every, progress=False,
                      optim=OptimConfig(lr=1e-3, warmup_steps=2))
    trainer = Trainer(model, step, cfg, tmp_path, device="cpu")
    if resume:
        assert trainer.resume()
    trainer.fit(make)
    return model


def test_resume_continues_exactly(tmp_path):
    straight = _run(tmp_path / "a", steps=8)
    _run(tmp_path / "b", steps=8, save_every=3)  # leaves checkpoints at 3 and 6 ... and 8
    # restart from step 6 as if the run had died there
    (tmp_path / "b" / "checkpoints" / "latest").write_text("step-00000006")
    resumed = _run(tmp_path / "b", steps=8, resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_nonfinite_loss_skips_or_stops(tmp_path):
    model = vlbert.create_model("tiny", task="vqa")
    bad = vqa_batch()
    bad.region_features[0, 0, 0] = float("nan")
    step = lambda m, b: OBJECTIVES["vqa"](m, b, ObjectiveConfig())  # noqa: E731
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(max_steps=1, progress=False, nonfinite="stop")
    with pytest.raises(NonFiniteLoss, match="step 1"):
        Trainer(model, step, cfg, tmp_path, device="cpu").fit(fixed(bad))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    good = vqa_batch(seed=1)
    mixed = lambda epoch, skip: iter([bad, good, good][skip:])  # noqa: E731
    trainer = Trainer(model, step, TrainConfig(max_steps=2, progress=False), tmp_path, device="cpu")
    state = trainer.fit(mixed)
    assert state.skipped_steps == 1 and state.step == 2


def test_gradient_checkpointing_gives_the_same_gradients():
    batch = pretrain_batch()
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = vlbert.create_model("tiny", task="vqa", hidden_dropout_prob=0.0, v_hidden_dropout_prob=0.0,
                                    attention_probs_dropout_prob=0.0, v_attention_probs_dropout_prob=0.0).train()
        if checkpointing:
            model.enable_checkpointing()
            assert all(layer.gradient_checkpointing for layer in model.vlbert.encoder.c_layer)
        out = model(**batch.model_inputs())
        out.logits.square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-5)


def test_rotated_boxes_move_every_real_region_and_keep_the_padding():
    from vlbert.engine.objectives import rotate_boxes

    boxes = torch.arange(2 * 4 * 4, dtype=torch.float).view(2, 4, 4)  # [B, N, 4], distinct boxes
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    for seed in range(5):
        rotated, rows = rotate_boxes(boxes, mask, torch.Generator().manual_seed(seed))
        assert rows.tolist() == [True, False]  # one region cannot move
        real = rotated[0, :3]
        assert not (real == boxes[0, :3]).all(-1).any()  # no region keeps its box
        assert sorted(real[:, 0].tolist()) == sorted(boxes[0, :3, 0].tolist())  # the same boxes, moved
        assert torch.equal(rotated[0, 3], boxes[0, 3]) and torch.equal(rotated[1], boxes[1])


def test_mirrored_boxes_flip_one_axis_per_image_and_keep_the_padding():
    from vlbert.engine.objectives import mirror_boxes

    box = torch.tensor([0.1, 0.2, 0.3, 0.5])
    boxes = box.repeat(64, 2, 1)  # [B, N, 4]: one real region and one padding slot per row
    mask = torch.tensor([[True, False]]).repeat(64, 1)
    mirrored, rows = mirror_boxes(boxes, mask, torch.Generator().manual_seed(0))
    left_right = torch.tensor([0.7, 0.2, 0.9, 0.5])  # x1' = 1 - x2, x2' = 1 - x1
    top_bottom = torch.tensor([0.1, 0.5, 0.3, 0.8])  # y1' = 1 - y2, y2' = 1 - y1
    is_lr = torch.isclose(mirrored[:, 0], left_right).all(-1)
    is_tb = torch.isclose(mirrored[:, 0], top_bottom).all(-1)
    assert (is_lr ^ is_tb).all()  # each image mirrored along exactly one axis
    assert 16 < int(is_tb.sum()) < 48  # both axes drawn, about half each
    assert torch.equal(mirrored[:, 1], boxes[:, 1]) and rows.all()
    none = mirror_boxes(boxes, torch.zeros(64, 2, dtype=torch.bool), torch.Generator().manual_seed(0))[1]
    assert not none.any()  # no real region: nothing to score


def test_mirror_box_negatives_train_and_a_wrong_kind_is_named():
    from vlbert.engine.objectives import ObjectiveConfig, box_negatives, pretrain_objective

    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="pretraining").eval()
    batch = pretrain_batch()
    moved = {kind: box_negatives(model, batch, torch.Generator().manual_seed(0), kind) for kind in ("rotate", "mirror")}
    assert not torch.allclose(moved["mirror"].states.hidden, moved["rotate"].states.hidden)  # other boxes
    cfg = ObjectiveConfig(box_negatives=True, box_negative_kind="mirror")
    assert torch.isfinite(pretrain_objective(model, batch, cfg, torch.Generator().manual_seed(0)).parts["itm"])
    with pytest.raises(ValueError, match="box_negative_kind"):
        ObjectiveConfig(box_negative_kind="shuffle")


def test_box_negatives_add_one_itm_row_per_caption_scored_against_its_moved_boxes():
    from vlbert.engine.objectives import ObjectiveConfig, box_negatives, pretrain_objective

    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="pretraining").eval()
    batch = pretrain_batch()
    text, image = model.vlbert.encode_pair(**batch.model_inputs())
    moved = box_negatives(model, batch, torch.Generator().manual_seed(0))
    assert moved.rows.tolist() == [0, 1, 2, 3] and moved.states.hidden.shape == image.hidden.shape
    logits = model.match_logits(text.select(moved.rows), moved.states)
    same = model.match_logits(text, image)
    assert logits.shape == (4, 2) and not torch.allclose(logits, same)  # other boxes, other scores
    cfg = ObjectiveConfig(box_negatives=True)
    with_boxes = pretrain_objective(model, batch, cfg, torch.Generator().manual_seed(0)).parts
    without = pretrain_objective(model, batch, ObjectiveConfig(), torch.Generator().manual_seed(0)).parts
    assert torch.isfinite(with_boxes["itm"]) and not torch.allclose(with_boxes["itm"], without["itm"])
    assert with_boxes["itc"] > without["itc"]  # more negatives in the contrastive softmax


def test_itc_extra_images_are_text_to_image_negatives_only():
    from vlbert.losses import itc_loss

    torch.manual_seed(0)
    text, image, extra = (torch.nn.functional.normalize(torch.randn(n, 8), dim=-1) for n in (3, 3, 2))
    scale = torch.tensor(5.0)
    logits = scale * text @ image.t()
    t2i = torch.cat([logits, scale * text @ extra.t()], 1)  # [3, 5]: captions against 5 images
    target = torch.arange(3)
    expected = 0.5 * (torch.nn.functional.cross_entropy(t2i, target)
                      + torch.nn.functional.cross_entropy(logits.t(), target))
    assert torch.allclose(itc_loss(text, image, scale, extra), expected)
    assert torch.allclose(itc_loss(text, image, scale, extra[:0]), itc_loss(text, image, scale))


def test_optimizer_is_fused_on_cpu_and_steps_like_the_loop():
    from vlbert.engine.optim import OptimConfig, build_optimizer, param_groups

    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="vqa", num_answers=4)
    twin = copy.deepcopy(model)
    cfg = OptimConfig(lr=1e-3, weight_decay=0.01)
    fused = build_optimizer(model, cfg)
    assert fused.defaults["fused"] is True
    loop = torch.optim.AdamW(param_groups(twin, cfg), betas=cfg.betas)  # the per-parameter implementation
    for step in range(3):
        for m in (model, twin):
            g = torch.Generator().manual_seed(step)
            for p in m.parameters():
                p.grad = torch.randn(p.shape, generator=g)
        fused.step()
        loop.step()
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)


def test_retrieval_with_itm_off_trains_itc_from_the_unimodal_states_only():
    from vlbert.engine.objectives import retrieval_objective
    from vlbert.losses import itc_loss

    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="retrieval").eval()  # no dropout: two passes agree
    batch = pretrain_batch()
    batch.masked_regions = None
    cfg = ObjectiveConfig(weights={"itc": 1.0, "itm": 0.0})
    out = retrieval_objective(model, batch, cfg, torch.Generator().manual_seed(0))
    assert set(out.parts) == {"itc"}
    text, image = model.vlbert.encode_pair(**batch.model_inputs())
    full = model.forward_states(text, image)  # the same ITC embeddings as the whole model's
    torch.testing.assert_close(out.parts["itc"], itc_loss(full.text_embed, full.image_embed, full.logit_scale))
    out.total.backward()
    assert model.itm_head.classifier.weight.grad is None  # no co-attention pass, no ITM
    assert all(p.grad is None for p in model.vlbert.encoder.c_layer.parameters())
    assert model.itc_head.text_proj.weight.grad.abs().sum() > 0
