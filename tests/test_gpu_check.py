"""tools/gpu_check.py in its dry mode (the GPU code path on the CPU with the tiny model), its
failure exit, its refusal without CUDA, and the peak table's lookup by device name."""

import importlib.util
import json

import pytest
import torch
from test_docs import ROOT

from vlbert.bench.gpu_check import device_peak

spec = importlib.util.spec_from_file_location("gpu_check_tool", ROOT / "tools" / "gpu_check.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_dry_run_checks_bf16_against_fp32_and_fails_past_the_tolerance(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert tool.main(["--dry-run", "--steps", "2", "--batch", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [run["name"] for run in report["runs"]] == ["pretraining", "vqa"] and report["failures"] == []
    for run in report["runs"]:
        assert len(run["losses_fp32"]) == len(run["losses_bf16"]) == 2
        assert run["losses_bf16"] != run["losses_fp32"]  # autocast did run in bf16
        assert 0 < run["max_relative_diff"] <= 0.05 and run["step_seconds"] > 0 and run["tflops_per_step"] > 0
    assert "| pretraining |" in capsys.readouterr().out
    argv = ["--dry-run", "--steps", "2", "--batch", "2", "--tolerance", "0", "--peak-tflops", "1", "--out", str(out)]
    assert tool.main(argv) == 1
    assert "FAILED pretraining: bf16 loss differs from fp32" in capsys.readouterr().err
    report = json.loads(out.read_text())
    assert len(report["failures"]) == 2 and all(run["mfu"] > 0 for run in report["runs"])  # against the given peak


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_cuda_the_real_check_refuses_to_run(capsys):
    assert tool.main([]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_peak_by_device_name():
    assert device_peak("NVIDIA H100 80GB HBM3", None) == 989.0
    assert device_peak("NVIDIA H100 PCIe", None) == 756.0
    assert device_peak("NVIDIA A100-SXM4-80GB", None) == 312.0
    assert device_peak("NVIDIA A10G", None) == 70.0
    assert device_peak("NVIDIA L4", None) == 121.0
    assert device_peak("Some New GPU", None) is None and device_peak("Some New GPU", 500.0) == 500.0
