"""`tools/bench.py --quick` runs every section, writes every key the benchmark promises, and its
numbers agree with one another; and a FLOP count against a hand-computed value."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.slow
def test_quick_bench_writes_every_key(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "BENCH_JSON": str(out)}
    done = subprocess.run([sys.executable, "tools/bench.py", "--quick", "--retrieval-model", str(tmp_path / "none")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    summary, train, retrieval = report["summary"], report["train"], report["retrieval"]
    # the summary repeats the sections' numbers, and each ratio is the one of the times it names
    assert summary == {"train_ratio_vs_lxmert": train["train_ratio_vs_lxmert"],
                       "flops_ratio_vs_lxmert": train["flops_ratio_vs_lxmert"], "mfu": train["mfu"],
                       "retrieval_speedup": retrieval["retrieval_speedup"],
                       "retrieval_r1_delta": retrieval["retrieval_r1_delta"],
                       "data_headroom": report["data"]["headroom"]}
    ratio = train["vlbert_samples_per_s"] / train["lxmert_samples_per_s"]
    assert train["train_ratio_vs_lxmert"] == pytest.approx(ratio)
    achieved = train["step_flops"] * train["vlbert_samples_per_s"] / train["batch"]
    assert train["achieved_flops_per_s"] == pytest.approx(achieved)
    assert train["mfu"] == pytest.approx(achieved / train["matmul_peak_flops_per_s"])
    lx_achieved = train["lxmert_step_flops"] * train["lxmert_samples_per_s"] / train["batch"]
    assert train["lxmert_achieved_flops_per_s"] == pytest.approx(lx_achieved)
    assert train["flops_ratio_vs_lxmert"] == pytest.approx(achieved / lx_achieved)
    largest = retrieval["scaling"][-1]
    assert retrieval["at_images"] == largest["images"] == 40
    assert retrieval["retrieval_speedup"] == pytest.approx(largest["all_pairs_s"] / largest["two_stage_s"])
    assert report["data"]["headroom"] == pytest.approx(report["data"]["loader_batches_per_s"]
                                                       / report["data"]["model_batches_per_s"])
    # the models measured are the ones named: tiny vlbert and LXMERT at its size
    from transformers import LxmertForPreTraining

    import vlbert
    from vlbert.bench.train_step import lxmert_config, parameters

    assert train["vlbert_params"] == parameters(vlbert.create_model("tiny", task="pretraining"))
    assert train["lxmert_params"] == parameters(LxmertForPreTraining(lxmert_config("tiny")))
    assert retrieval["trained"] is False and retrieval["r1_delta_at_images"] == 20
    assert [s["images"] for s in retrieval["scaling"]] == [20, 40]
    itc_dim = vlbert.create_model("tiny", task="retrieval").config.itc_dim
    for s in retrieval["scaling"]:  # the ITC index: one itc_dim float vector per caption and per image
        assert s["itc_index_mb"] == pytest.approx((s["texts"] + s["images"]) * itc_dim * 4 / 2**20)
        assert s["rerank_cache_mb"] > 10 * s["itc_index_mb"]  # every token's and region's state
    assert [m["task"] for m in report["memory"]] == ["retrieval", "vqa"]
    exact = retrieval["scaling"][0]
    assert retrieval["retrieval_r1_delta_first"] == pytest.approx(exact["two_stage_r1_first"] - exact["all_pairs_r1_first"])
    assert report["cuda"] == "skipped: no GPU" or "train" in report["cuda"]
    assert "train_ratio_vs_lxmert" in done.stdout


def test_first_rows_finds_each_images_first_caption():
    import torch

    from vlbert.bench.retrieval import first_rows

    owner = torch.tensor([0, 0, 1, 2, 1, 2, 0])
    assert first_rows(owner, 3).tolist() == [0, 2, 3]


def test_step_flops_differ_by_the_mlm_head_at_the_unmasked_tokens():
    """Scoring the MLM vocabulary at every token instead of the masked ones adds, per unmasked
    token, the head's two products (transform H x H, decoder H x V), forward and backward (the
    counter counts a product's backward as two): 3 * 2 * (B*L - M) * (H*H + H*V) FLOPs."""
    import torch

    import vlbert
    from vlbert.bench.train_step import count_flops, make_inputs, vlbert_step
    from vlbert.data.pipeline.masking import IGNORE_INDEX

    cpu = torch.device("cpu")
    inputs = make_inputs("tiny", 4, 12, 5, cpu)
    flops = {}
    for scoring in ("masked", "all"):
        _, step = vlbert_step("tiny", cpu, inputs, None, mlm_scoring=scoring)
        flops[scoring] = count_flops(step)
    config = vlbert.create_config("tiny")
    B, L = inputs.input_ids.shape
    M = int((inputs.mlm_labels != IGNORE_INDEX).sum())
    H, V = config.hidden_size, config.vocab_size
    assert (B, L, M, H, V) == (4, 12, 6, 32, 30522)
    assert flops["all"] - flops["masked"] == 3 * 2 * (B * L - M) * (H * H + H * V) == 246_387_456


def test_bench_step_scores_masked_tokens_with_the_same_loss():
    import torch

    from vlbert.bench.train_step import make_inputs, vlbert_step

    inputs = make_inputs("tiny", 4, 12, 5, torch.device("cpu"))
    losses = []
    for scoring in ("masked", "all"):
        torch.manual_seed(0)
        _, step = vlbert_step("tiny", torch.device("cpu"), inputs, None, mlm_scoring=scoring)
        losses.append(step())
    torch.testing.assert_close(losses[0], losses[1])
    with pytest.raises(ValueError, match="mlm_scoring"):
        vlbert_step("tiny", torch.device("cpu"), inputs, None, mlm_scoring="some")


def test_inference_memory_is_accounted_in_a_fresh_process():
    """The account's parameter bytes are the model's own, and the parts are consistent: a new process
    starts below the peak, and the weights it builds take at least their parameters' bytes."""
    import vlbert
    from vlbert.bench.memory import account_inference_memory

    account = account_inference_memory("tiny", "vqa", 4, threads=1)
    model = vlbert.create_model("tiny", task="vqa", num_answers=3129)
    assert account.parameter_mb == pytest.approx(sum(p.numel() * 4 for p in model.parameters()) / 2**20)
    assert 0 < account.runtime_mb < account.peak_mb
    assert account.weights_mb >= 0.9 * account.parameter_mb
    assert account.peak_mb >= account.runtime_mb + account.weights_mb * 0.9
    assert account.activations_mb >= 0


def test_only_retrieval_writes_the_retrieval_section_alone(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "tools/bench.py", "--quick", "--only-retrieval", "--retrieval-model",
                           str(tmp_path / "none"), "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report) == {"machine", "quick", "retrieval"}
    assert [s["images"] for s in report["retrieval"]["scaling"]] == [20, 40]
    assert "retrieval_speedup at 40 images" in done.stdout and "re-rank cache" in done.stdout
