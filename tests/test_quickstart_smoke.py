"""The quickstart pipeline end to end with a few steps per stage (the full run is `make quickstart`)."""

import json

import pytest
import yaml

from vlbert.cli import main


@pytest.mark.slow
def test_quickstart_smoke_writes_report_and_figures(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--smoke", "--ablation", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    for section, key in [("vqa", "relational_acc"), ("vqa", "nonrelational_acc"), ("vqa", "question_only_acc"),
                         ("retrieval", "t2i_r1"), ("retrieval", "i2t_r1"), ("caption", "bleu4"),
                         ("caption", "cider"), ("ablation", "pretrained_acc"), ("ablation", "scratch_acc")]:
        value = report[section][key]
        assert 0.0 <= value <= (10.0 if key == "cider" else 1.0), (section, key, value)
    assert [s["name"] for s in report["stages"]] == [
        "pretrain", "vqa-first", "vqa", "question-only", "retrieval", "caption", "ablation-pretrained-first",
        "ablation-pretrained", "ablation-scratch-first", "ablation-scratch"]
    assert report["retrieval"]["num_images"] == 24  # every held-out image of the smoke plan
    for name in ("loss_curves.png", "vqa_examples.png", "retrieval_examples.png"):
        assert (out / name).stat().st_size > 10_000, name
    table = capsys.readouterr().out
    assert "relational accuracy" in table and "text->image R@1" in table
    # the VQA stage starts from scratch with the pre-trained vocabulary (the plan's vqa_from) on
    # the first subtypes, then goes on from there with every question
    first = yaml.safe_load((out / "vqa-first" / "config.yaml").read_text())
    assert first["model"]["init"] is None and first["data"]["tokenizer"] == str(out / "pretrain" / "model")
    assert first["data"]["question_subtypes"] == ["shape", "horizontal", "vertical", "closest", "furthest"]
    vqa = yaml.safe_load((out / "vqa" / "config.yaml").read_text())
    assert vqa["model"]["init"] == str(out / "vqa-first" / "model") and vqa["data"]["question_subtypes"] == []
    assert report["settings"]["vqa_from"] == "scratch"
    # both ablation runs start on the position questions, at the same fraction of the labels, one
    # from the pre-trained model and one from scratch, then go on with every question
    for run, init in (("ablation-pretrained", str(out / "pretrain" / "model")), ("ablation-scratch", None)):
        first = yaml.safe_load((out / f"{run}-first" / "config.yaml").read_text())
        assert first["model"]["init"] == init and first["data"]["question_subtypes"] == ["horizontal", "vertical"]
        rest = yaml.safe_load((out / run / "config.yaml").read_text())
        assert rest["model"]["init"] == str(out / f"{run}-first" / "model") and rest["data"]["question_subtypes"] == []
        assert first["data"]["label_fraction"] == rest["data"]["label_fraction"] == 0.5
    # pre-training and retrieval read each image's full description; retrieval is ranked by ITC
    for stage in ("pretrain", "retrieval"):
        assert yaml.safe_load((out / stage / "config.yaml").read_text())["data"]["train_captions"] == "first"
    retrieval = yaml.safe_load((out / "retrieval" / "config.yaml").read_text())
    assert retrieval["eval"]["retrieval_mode"] == "itc" and retrieval["objective"]["weights"]["itm"] == 0


@pytest.mark.slow
def test_quickstart_vqa_can_start_from_the_pretrained_model(tmp_path):
    from dataclasses import replace

    from vlbert.quickstart.pipeline import run_quickstart
    from vlbert.quickstart.plan import QuickstartPlan

    out = tmp_path / "qs"
    run_quickstart(out, plan=replace(QuickstartPlan.smoke(), vqa_from="pretrained", vqa_first_steps=0), progress=False)
    assert f"init: {out / 'pretrain' / 'model'}" in (out / "vqa" / "config.yaml").read_text()
    assert not (out / "vqa-first").exists()  # no first phase: one VQA stage
    with pytest.raises(ValueError, match="vqa_from"):
        run_quickstart(tmp_path / "bad", plan=replace(QuickstartPlan.smoke(), vqa_from="imagenet"), progress=False)
