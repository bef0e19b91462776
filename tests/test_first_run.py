"""What a new user hits first: `predict` with a bad feature file or a model directory that is not
there, and the README's pre-training line on shards without a validation split."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vlbert
from tests.helpers import ROOT
from vlbert.cli import main
from vlbert.data.pipeline.answers import AnswerVocab
from vlbert.data.pipeline.tokenize import build_wordpiece_tokenizer
from vlbert.data.shards.schema import DataError
from vlbert.eval.saved import RunParts, save_model_dir
from vlbert.run.setup import sizes_from_data
from vlbert.runconfig import load_run_config
from vlbert.weights.checkpoint import looks_like_hub_id

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
VAL_WARNING = "data.val_split=val: {root}/manifest.json lists no shards of split 'val'; training without validation"


@pytest.fixture(scope="module")
def vqa_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny VQA model directory (untrained) and an image beside it."""
    root = tmp_path_factory.mktemp("predict")
    tokenizer = build_wordpiece_tokenizer(["what color is the circle", "how many squares"], 200, root / "tok")
    answers = AnswerVocab.build([["red"], ["blue"], ["1"]])
    model = vlbert.create_model("tiny", task="vqa", num_answers=len(answers), vocab_size=len(tokenizer))
    save_model_dir(RunParts(model, tokenizer, answers), root / "model")
    Image.new("RGB", (40, 30), (200, 10, 10)).save(root / "image.png")
    return root


def _features(path: Path, features: np.ndarray, boxes: np.ndarray) -> Path:
    np.savez(path, features=features.astype(np.float32), boxes=boxes.astype(np.float32))
    return path


def _predict(root: Path, model: str, features: Path | None = None) -> list[str]:
    argv = ["predict", "--model", model, "--image", str(root / "image.png"), "--question", "what color", "--top", "1"]
    return argv + (["--features", str(features)] if features else [])


@pytest.mark.parametrize("array, value", [("features", np.nan), ("features", np.inf), ("boxes", np.nan)])
def test_predict_refuses_non_finite_region_features(vqa_model, tmp_path, capsys, array, value):
    features, boxes = np.zeros((2, 48)), np.array([[0, 0, 10, 10], [5, 5, 20, 20]], np.float32)
    (features if array == "features" else boxes)[1, 2] = value
    bad = _features(tmp_path / "bad.npz", features, boxes)
    assert main(_predict(vqa_model, str(vqa_model / "model"), bad)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"vlbert predict: error: {bad}: region {array} hold NaN or infinite values\n"
    good = _features(tmp_path / "good.npz", np.zeros((2, 48)), np.array([[0, 0, 10, 10], [5, 5, 20, 20]]))
    assert main(_predict(vqa_model, str(vqa_model / "model"), good)) == 0
    answer = capsys.readouterr().out.split()
    assert len(answer) == 2 and 0.0 < float(answer[0]) < 1.0 and answer[1] in {"red", "blue", "1"}


def test_predict_never_picks_a_detector_for_a_region_model(vqa_model, capsys):
    assert main(_predict(vqa_model, str(vqa_model / "model"))) == 2
    assert capsys.readouterr().err == (
        "vlbert predict: error: this model reads region features: give a features .npz (--features), "
        "or a detector for Sort-of-CLEVR-style scenes (--detector sort-of-clevr)\n")


def test_the_built_in_detector_runs_when_named(vqa_model, tmp_path, capsys):
    from vlbert.data.sources.sort_of_clevr.detect import OBJECT_PIXELS
    from vlbert.data.sources.sort_of_clevr.shards import make_sample

    tokenizer = build_wordpiece_tokenizer(["what color is the circle"], 200, tmp_path / "tok")
    answers = AnswerVocab.build([["red"], ["blue"], ["1"]])
    model = vlbert.create_model("tiny", task="vqa", num_answers=len(answers), vocab_size=len(tokenizer),
                                v_feature_size=OBJECT_PIXELS**2 * 3)  # the detector's crops, RGB
    save_model_dir(RunParts(model, tokenizer, answers), tmp_path / "model")
    scene = tmp_path / "scene.png"
    scene.write_bytes(make_sample(0, split="test").image)
    argv = ["predict", "--model", str(tmp_path / "model"), "--image", str(scene), "--question", "what color"]
    assert main([*argv, "--top", "1"]) == 2 and "--detector sort-of-clevr" in capsys.readouterr().err
    assert main([*argv, "--top", "1", "--detector", "sort-of-clevr"]) == 0
    answer = capsys.readouterr().out.split()
    assert len(answer) == 2 and answer[1] in {"red", "blue", "1"}


@pytest.fixture
def hub_calls(monkeypatch) -> list[str]:
    """Calls that reach the hub (answered with a failure); HF_HUB_OFFLINE is unset."""
    import huggingface_hub

    calls: list[str] = []

    def refuse(repo_id: str, **kwargs: object) -> str:
        calls.append(repo_id)
        raise ConnectionError("no network in tests")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    return calls


@pytest.mark.parametrize("name", ["{tmp}/no-model", "./no-model", "../no-model", "runs/vqa/model", "runs/typo"])
def test_predict_with_a_missing_model_directory_says_so_without_the_hub(vqa_model, tmp_path, monkeypatch,
                                                                       capsys, hub_calls, name):
    (tmp_path / "runs").mkdir()  # runs/typo: under an existing folder, so a path, not a hub id
    monkeypatch.chdir(tmp_path)
    name = name.format(tmp=tmp_path)
    assert main(_predict(vqa_model, name)) == 2
    assert capsys.readouterr().err == f"vlbert predict: error: {name} is not a model directory (no config.json)\n"
    assert hub_calls == []


def test_predict_asks_the_hub_for_an_owner_name_id(vqa_model, tmp_path, monkeypatch, capsys, hub_calls):
    monkeypatch.chdir(tmp_path)
    assert main(_predict(vqa_model, "someone/vlbert-vqa")) == 2
    err = capsys.readouterr().err
    assert hub_calls == ["someone/vlbert-vqa"] and "the hub could not provide it" in err and err.count("\n") == 1


def test_predict_names_a_directory_without_config_json(vqa_model, tmp_path, capsys, hub_calls):
    assert main(_predict(vqa_model, str(tmp_path))) == 2
    assert capsys.readouterr().err == f"vlbert predict: error: {tmp_path} is not a model directory (no config.json)\n"
    assert hub_calls == []


@pytest.mark.parametrize(
    "name, hub",
    [("bert-base-uncased", True), ("owner/name", True), ("owner/name.v2", True), ("/abs/dir", False),
     ("./dir", False), ("../dir", False), ("a/b/c", False), ("~/dir", False), ("dir/", False), ("a\\b", False),
     ("owner/..", False), ("", False)],
)
def test_hub_ids_and_paths(name, hub):
    assert looks_like_hub_id(name) is hub


@pytest.fixture(scope="module")
def soc_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's shards, smaller: region features (363-d, 12 classes), train and test, no val."""
    root = tmp_path_factory.mktemp("first-run") / "soc"
    assert main(["make-shards", "sort-of-clevr", "--num-images", "24", "--num-test", "4", "--region-features",
                 "--out", str(root)]) == 0
    return root


def test_readme_pretrain_line_sizes_the_model_from_the_data_and_skips_a_missing_val_split(soc_shards, tmp_path):
    """`vlbert pretrain data.root=data/soc model.name=tiny ...` as the README gives it."""
    out = tmp_path / "pre"
    argv = [sys.executable, "-m", "vlbert.cli", "pretrain", f"data.root={soc_shards}", "model.name=tiny",
            "train.max_steps=2", f"out_dir={out}", "data.batch_size=8", "train.progress=false"]
    done = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert VAL_WARNING.format(root=soc_shards) in done.stderr
    assert done.stdout.startswith(f"trained 2 steps; model in {out / 'model'}")
    config = json.loads((out / "model" / "config.json").read_text())
    assert (config["v_feature_size"], config["v_target_size"]) == (363, 12)
    assert (out / "model" / "model.safetensors").is_file()
    assert "val_split: null" in (out / "config.yaml").read_text()


def test_region_sizes_come_from_the_data_unless_overridden(soc_shards, caplog):
    cfg = load_run_config(None, [f"data.root={soc_shards}", "model.name=tiny"], task="pretraining")
    with caplog.at_level(logging.INFO, logger="vlbert.run.setup"):
        assert sizes_from_data(cfg, {}) == {"v_feature_size": 363, "v_target_size": 12}
    assert f"model tiny: v_feature_size=363, v_target_size=12 from the region features in {soc_shards}" in caplog.text
    cfg = load_run_config(None, [f"data.root={soc_shards}", "model.name=tiny", "model.overrides.v_target_size=7"],
                          task="pretraining")
    assert sizes_from_data(cfg, dict(cfg.model.overrides)) == {"v_feature_size": 363}
    cfg = load_run_config(None, [f"data.root={soc_shards}", "model.name=tiny-vit"], task="pretraining")
    assert sizes_from_data(cfg, {}) == {}  # a pixel model reads no region features


def test_a_failed_final_evaluation_keeps_the_trained_model(soc_shards, tmp_path, monkeypatch, caplog):
    def failing(*args: object) -> dict[str, float]:
        raise DataError("evaluation broke")

    monkeypatch.setattr("vlbert.run.training.evaluate_parts", failing)
    out = tmp_path / "run"
    argv = ["pretrain", f"data.root={soc_shards}", "model.name=tiny", "train.max_steps=2", f"out_dir={out}",
            "data.batch_size=8", "train.progress=false", "data.val_split=test"]
    assert main(argv) == 2
    assert (out / "model" / "model.safetensors").is_file() and (out / "model" / "config.json").is_file()
    assert f"training finished and the model is saved in {out / 'model'}" in caplog.text


def test_predict_divides_boxes_by_the_size_the_detector_saw(vqa_model):
    """Features imported or extracted for the full-size image, used with a smaller copy of it: the
    boxes stay where the detector put them."""
    from vlbert.data.shards.schema import RegionFeatures
    from vlbert.run.predict import Predictor

    predictor = Predictor(vqa_model / "model")
    features = np.ones((1, predictor.model.config.v_feature_size), dtype=np.float32)
    boxes = np.array([[40, 30, 80, 90]], dtype=np.float32)
    detected = RegionFeatures(features, boxes, image_size=(80, 120))  # the image is 40 x 30
    inputs = predictor.image_inputs(vqa_model / "image.png", detected)
    assert inputs["region_boxes"][0, 0].tolist() == [0.5, 0.25, 1.0, 0.75]
