"""Issue #28's proof path at smoke size: tools/train_detector.py trains a Faster R-CNN on the
built-in scenes and reports recall; tools/detected_vs_oracle.py extracts regions with it, writes
shards and runs the quickstart's VQA stage on detected and oracle regions."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from tests.helpers import ROOT

pytest.importorskip("torchvision")


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_train_detector_then_vqa_on_detected_regions(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    weights = tmp_path / "detector.pt"
    report = load_tool("train_detector").main(["--steps", "2", "--batch-size", "2", "--test-images", "4",
                                               "--log-every", "1", "--out", str(weights)])  # fmt: skip
    assert 0.0 <= report["recall_iou50"] <= 1.0 and report["regions_per_image"] >= 1
    saved = torch.load(weights, weights_only=True)
    assert saved["name"] == "fasterrcnn_mobilenet_v3_large_fpn" and len(saved["classes"]) == 13
    assert "step 2/2 loss" in capsys.readouterr().out

    out = tmp_path / "detected"
    report = load_tool("detected_vs_oracle").main(["--weights", str(weights), "--out", str(out), "--plan", "smoke"])
    assert set(report) >= {"recall_iou50", "extraction_images_per_second", "vqa_oracle", "vqa_detected", "vqa_gap"}
    for arm in ("vqa_oracle", "vqa_detected"):
        assert 0.0 <= report[arm]["vqa_acc"] <= 1.0 and "vqa_acc_relational" in report[arm]
    assert (out / "detected" / "manifest.json").is_file() and (out / "report.json").is_file()
    assert len(list((out / "features" / "test").glob("*.npz"))) == report["test_images"]
