"""The quickstart pipeline end to end with a few steps per stage (the full run is `make quickstart`)."""

import json

import pytest
import yaml

from vlbert.cli import main


@pytest.mark.slow
def test_quickstart_smoke_writes_report_and_figures(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--smoke", "--ablation", "--out", str(out), "--seed", "3"]) == 0
    report = json.loads((out / "report.json").read_text())
    for section, key in [("vqa", "relational_acc"), ("vqa", "nonrelational_acc"), ("vqa", "question_only_acc"),
                         ("retrieval", "t2i_r1"), ("retrieval", "i2t_r1"), ("retrieval", "t2i_r1_itc"),
                         ("caption", "bleu4"), ("caption", "cider"), ("caption", "exact"), ("caption", "objects"),
                         ("caption", "orders"), ("caption", "truncated"), ("pretrain", "itm_mirror_preferred"),
                         ("pretrain", "itm_mirror_vertical_preferred"), ("vqa", "grounding_shape"),
                         ("vqa", "grounding_attention_shape")]:
        value = report[section][key]
        assert 0.0 <= value <= (10.0 if key == "cider" else 1.0), (section, key, value)
    for fraction in ("1.0", "0.5"):  # the smoke plan's fractions of the labels
        assert all(0.0 <= report["transfer"]["vqa"][fraction][start] <= 1.0 for start in ("pretrained", "scratch"))
    assert 0.0 <= report["transfer"]["retrieval"]["scratch"] <= 1.0
    assert report["transfer"]["retrieval"]["pretrained"] == report["retrieval"]["t2i_r1"]
    assert [s["name"] for s in report["stages"]] == [
        "pretrain", "vqa-first", "vqa", "question-only", "retrieval", "caption", "transfer-vqa-1-pretrained",
        "transfer-vqa-1-scratch", "transfer-vqa-0.5-pretrained", "transfer-vqa-0.5-scratch", "retrieval-scratch"]
    assert report["retrieval"]["num_images"] == 24  # every held-out image of the smoke plan
    assert report["settings"]["seed"] == 3
    for name in ("loss_curves.png", "vqa_examples.png", "retrieval_examples.png"):
        assert (out / name).stat().st_size > 10_000, name
    table = capsys.readouterr().out
    assert "relational accuracy" in table and "text->image R@1" in table and "ITC alone" in table
    # pre-training reads the caption-only corpus: its own split, no image of the task splits
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert manifest["splits"]["pretrain"] == 96 and manifest["meta"]["caption_only"] == ["pretrain"]
    pre = yaml.safe_load((out / "pretrain" / "config.yaml").read_text())
    assert pre["data"]["train_split"] == "pretrain" and pre["data"]["train_captions"] == "first+one"
    assert pre["data"]["batch_size"] == 8  # the plan's pre-training batch, not the task stages' 16
    # pre-training asks the description's content words more often and scores moved boxes as ITM negatives
    assert pre["objective"]["box_negatives"] is True and pre["objective"]["mlm_focus_prob"] == 0.3
    assert {"left", "top", "red", "circle"} <= set(pre["objective"]["mlm_focus_words"])
    # VQA starts from the pre-trained model (the plan's vqa_from), unfrozen from the top, on the first
    # subtypes, then goes on from there with every question
    first = yaml.safe_load((out / "vqa-first" / "config.yaml").read_text())
    assert first["model"]["init"] == str(out / "pretrain" / "model")
    assert first["data"]["question_subtypes"] == ["shape", "horizontal", "vertical", "closest", "furthest"]
    vqa = yaml.safe_load((out / "vqa" / "config.yaml").read_text())
    assert vqa["model"]["init"] == str(out / "vqa-first" / "model") and vqa["data"]["question_subtypes"] == []
    for run in (first, vqa):
        assert run["train"]["finetune"]["unfreeze_every"] == 1 and run["model"]["overrides"]["vqa_text_pooling"] == "mean"
    # retrieval and captioning start from the pre-trained model
    for stage in ("retrieval", "caption"):
        assert yaml.safe_load((out / stage / "config.yaml").read_text())["model"]["init"] == str(out / "pretrain" / "model")
    # the transfer runs: same steps and settings, one from the pre-trained model, one from its vocabulary only
    for fraction in ("1", "0.5"):
        runs = {start: yaml.safe_load((out / f"transfer-vqa-{fraction}-{start}" / "config.yaml").read_text())
                for start in ("pretrained", "scratch")}
        assert runs["pretrained"]["model"]["init"] == str(out / "pretrain" / "model")
        assert runs["scratch"]["model"]["init"] is None
        assert runs["scratch"]["data"]["tokenizer"] == str(out / "pretrain" / "model")
        # gradual unfreezing is how a pre-trained start fine-tunes; frozen random layers keep nothing
        assert runs["pretrained"]["train"]["finetune"]["unfreeze_every"] == 1
        assert runs["scratch"]["train"]["finetune"]["unfreeze_every"] == 0
        for run in runs.values():
            run["train"]["finetune"].pop("unfreeze_every")
        assert runs["pretrained"]["train"] == runs["scratch"]["train"]  # otherwise the same settings
        assert runs["pretrained"]["data"]["label_fraction"] == float(fraction)
    # captioning trains on each image's full description, so its captions state the whole scene
    assert yaml.safe_load((out / "caption" / "config.yaml").read_text())["data"]["train_captions"] == "first"
    # retrieval trains ITC and ITM and ranks two-stage
    retrieval = yaml.safe_load((out / "retrieval" / "config.yaml").read_text())
    assert retrieval["eval"]["retrieval_mode"] == "two-stage" and retrieval["objective"]["weights"]["itm"] == 1


@pytest.mark.slow
def test_quickstart_vqa_can_start_from_scratch_in_two_phases(tmp_path):
    from dataclasses import replace

    from vlbert.quickstart.pipeline import run_quickstart
    from vlbert.quickstart.plan import QuickstartPlan

    out = tmp_path / "qs"
    run_quickstart(out, plan=replace(QuickstartPlan.smoke(), vqa_from="scratch", vqa_first_steps=1), progress=False)
    first = yaml.safe_load((out / "vqa-first" / "config.yaml").read_text())
    assert first["model"]["init"] is None and first["data"]["tokenizer"] == str(out / "pretrain" / "model")
    assert first["data"]["question_subtypes"] == ["shape", "horizontal", "vertical", "closest", "furthest"]
    assert first["train"]["finetune"]["unfreeze_every"] == 0  # nothing pre-trained to keep
    vqa = yaml.safe_load((out / "vqa" / "config.yaml").read_text())
    assert vqa["model"]["init"] == str(out / "vqa-first" / "model") and vqa["data"]["question_subtypes"] == []
    with pytest.raises(ValueError, match="vqa_from"):
        run_quickstart(tmp_path / "bad", plan=replace(QuickstartPlan.smoke(), vqa_from="imagenet"), progress=False)
