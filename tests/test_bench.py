"""`tools/bench.py --quick` runs every section and writes every key the benchmark promises."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_bench_writes_every_key(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "BENCH_JSON": str(out)}
    done = subprocess.run([sys.executable, "tools/bench.py", "--quick", "--retrieval-model", str(tmp_path / "none")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert summary["train_ratio_vs_lxmert"] > 0 and 0 < summary["mfu"] < 1
    assert summary["retrieval_speedup"] > 0 and summary["data_headroom"] > 0
    assert report["retrieval"]["trained"] is False and report["retrieval"]["r1_delta_at_images"] == 20
    assert [s["images"] for s in report["retrieval"]["scaling"]] == [20, 40]
    train = report["train"]
    assert train["vlbert_params"] > 0 and train["lxmert_params"] > 0 and train["step_flops"] > 0
    assert train["mlm_masked_speedup"] > 0
    assert report["inference"]["itm_pairs_per_s"] > 0 and report["inference"]["peak_memory_mb"] > 0
    assert report["cuda"] == "skipped: no GPU" or "train" in report["cuda"]
    assert "train_ratio_vs_lxmert" in done.stdout


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
