"""Adversarial training in embedding space and distillation: what they add to the task loss."""

import pytest
import torch

import vlbert
from tests.test_engine import vqa_batch
from vlbert.engine.finetune import FinetuneConfig
from vlbert.engine.objectives import OBJECTIVES, ObjectiveConfig
from vlbert.engine.regularizers import EmbeddingNoise, kl_to, task_logits, wrap_objective


def vqa_step(model, batch):
    return OBJECTIVES["vqa"](model, batch, ObjectiveConfig())


def test_kl_is_zero_for_equal_logits_and_known_for_two_classes():
    logits = torch.randn(3, 4, 5)
    assert kl_to(logits, logits).item() == pytest.approx(0.0, abs=1e-6)
    p, q = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, torch.log(torch.tensor(3.0))]])  # (1/2, 1/2) vs (1/4, 3/4)
    expected = 0.5 * torch.log(torch.tensor(2.0)) + 0.5 * torch.log(torch.tensor(2 / 3))
    assert kl_to(p, q).item() == pytest.approx(expected.item(), rel=1e-5)


def test_pgd_perturbation_stays_in_the_ball_and_raises_the_divergence():
    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="vqa").eval()  # no dropout: the divergence is the noise's
    batch = vqa_batch()
    target = task_logits(model, batch).detach()
    noise = EmbeddingNoise(model, init=1e-3)
    divergences = []
    with noise.active():
        for _ in range(4):
            divergence = kl_to(target, task_logits(model, batch))
            divergences.append(divergence.item())
            names = list(noise.deltas)
            grads = torch.autograd.grad(divergence, [noise.deltas[n] for n in names])
            noise.ascend(dict(zip(names, grads)), step=0.05, epsilon=0.1)
    assert set(noise.deltas) == {"text", "visual"}
    assert noise.deltas["text"].shape == (4, 8, 32) and noise.deltas["visual"].shape == (4, 6, 32)  # IMG token + 5
    assert all(d.norm(dim=-1).max() <= 0.1 + 1e-6 for d in noise.deltas.values())
    assert divergences[-1] > divergences[0] * 10
    with torch.no_grad():  # hooks removed: the clean output again
        torch.testing.assert_close(task_logits(model, batch), target)


def test_adversarial_loss_adds_perturbed_task_loss_and_kl_and_trains_the_model():
    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="vqa").eval()
    batch = vqa_batch()
    clean = vqa_step(model, batch).total
    step = wrap_objective(vqa_step, FinetuneConfig(adversarial=True, adv_steps=2, adv_kl_weight=2.0))
    loss = step(model, batch)
    assert set(loss.parts) == {"vqa", "adv", "adv_kl"} and loss.parts["adv_kl"] > 0
    torch.testing.assert_close(loss.total, clean + loss.parts["adv"] + 2.0 * loss.parts["adv_kl"])
    loss.total.backward()
    assert model.vlbert.encoder.layer[0].attention.self.query.weight.grad is not None


def test_distillation_mixes_task_loss_and_tempered_kl_to_the_teacher(tmp_path):
    torch.manual_seed(0)
    teacher = vlbert.create_model("tiny", task="vqa")
    student = vlbert.create_model("tiny", task="vqa").eval()
    batch = vqa_batch()
    cfg = FinetuneConfig(teacher="unused", distill_weight=0.25, distill_temperature=2.0)
    loss = wrap_objective(vqa_step, cfg, teacher)(student, batch)
    with torch.no_grad():
        expected = kl_to(task_logits(teacher, batch), task_logits(student, batch), 2.0) * 4.0
    torch.testing.assert_close(loss.parts["distill"], expected)
    torch.testing.assert_close(loss.total, 0.75 * loss.parts["vqa"] + 0.25 * expected)
    same = wrap_objective(vqa_step, cfg, student)(student, batch)  # its own teacher: nothing to distil
    assert same.parts["distill"].item() == pytest.approx(0.0, abs=1e-6)
    other = vlbert.create_model("tiny", task="vqa", num_answers=7)
    with pytest.raises(ValueError, match="teacher: its outputs"):
        wrap_objective(vqa_step, cfg, other)(student, batch)
