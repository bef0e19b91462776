"""The user's path through the `vlbert` command on built-in data: make-shards -> pretrain ->
finetune (vqa, retrieval, caption) -> evaluate -> predict, on a tiny model."""

import json

import pytest
import torch

from vlbert.cli import main
from vlbert.data.pipeline.batch import Batch
from vlbert.eval.gallery import gather_gallery

TINY_REGIONS = ["model.name=tiny", "model.overrides.v_feature_size=363", "model.overrides.v_target_size=12",
                "data.max_length=96", "data.batch_size=16", "data.eval_batch_size=32", "train.progress=false"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    assert main(["make-shards", "sort-of-clevr", "--num-images", "120", "--num-val", "16", "--num-test", "16",
                 "--region-features", "--shard-size", "50", "--out", str(root / "shards")]) == 0
    return root


@pytest.mark.slow
def test_pretrain_finetune_evaluate_predict(workspace, capsys):
    shards, pre = workspace / "shards", workspace / "pre"
    assert main(["pretrain", f"data.root={shards}", f"out_dir={pre}", "train.max_steps=4", *TINY_REGIONS]) == 0
    for name in ("config.json", "model.safetensors", "tokenizer_config.json"):
        assert (pre / "model" / name).is_file(), name
    assert (pre / "config.yaml").is_file() and (pre / "checkpoints" / "latest").is_file()
    assert list((pre / "tb").glob("events.out.tfevents.*")), "TensorBoard events"
    logged = json.loads((pre / "metrics.json").read_text())
    assert {"loss", "loss_mlm", "loss_mrm", "loss_itm", "loss_itc", "grad_norm", "lr"} <= set(logged[0])
    metrics = json.loads((pre / "final_metrics.json").read_text())
    assert set(metrics) == {"mlm_acc", "itm_acc"}

    expected = {"vqa": "vqa_acc_relational", "retrieval": "t2i_r1", "caption": "cider"}
    for task, key in expected.items():
        out = workspace / task
        args = ["finetune", task, f"data.root={shards}", f"out_dir={out}", f"model.init={pre / 'model'}",
                "train.max_steps=3", "eval.caption_mode=first", *TINY_REGIONS]
        assert main(args) == 0
        capsys.readouterr()
        card = (out / "model" / "README.md").read_text()
        assert f"vlbert {'captioning' if task == 'caption' else task} model" in card and "3 optimizer steps" in card
        assert "Intended use" in card and str(shards) in card
        trained = json.loads((out / "final_metrics.json").read_text())
        assert all(f"| {k} | {v:.4f} |" in card for k, v in trained.items()) and trained
        assert main(["evaluate", "--model", str(out / "model"), "--task", task, "--data", str(shards),
                     "--split", "test", "--out", str(out / "test.json"), "eval.caption_mode=first"]) == 0
        result = json.loads((out / "test.json").read_text())
        assert key in result and 0.0 <= result[key] <= (10.0 if task == "caption" else 1.0)

    image = workspace / "scene.png"
    from vlbert.data.sources.sort_of_clevr.shards import make_sample

    image.write_bytes(make_sample(0, split="test").image)
    capsys.readouterr()
    detect = ["--detector", "sort-of-clevr"]  # region models: the built-in detector, asked for by name
    assert main(["predict", "--model", str(workspace / "vqa" / "model"), "--image", str(image),
                 "--question", "what is the shape of the red object?", "--top", "3", *detect]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(0.0 <= float(line.split()[0]) <= 1.0 for line in lines)
    assert main(["predict", "--model", str(workspace / "caption" / "model"), "--image", str(image), "--caption",
                 *detect]) == 0
    assert capsys.readouterr().out.strip()
    folder = workspace / "gallery"
    folder.mkdir()
    for i in range(3):
        (folder / f"s{i}.png").write_bytes(make_sample(i, split="test").image)
    assert main(["predict", "--model", str(workspace / "retrieval" / "model"), "--images", str(folder),
                 "--query", "a red circle", "--top", "2", *detect]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_bad_inputs_get_one_line_errors(workspace, capsys):
    cases = [
        (["pretrain", "train.max_stepz=3"], "unknown config key 'train.max_stepz'"),
        (["pretrain", "train.max_steps=many"], "train.max_steps: expected int"),
        (["pretrain", "train.max_steps=2"], "data.root"),
        (["finetune", "vqa", "data.root=/no/such/dir", "train.max_steps=2"], "/no/such/dir"),
        (["evaluate", "--model", "/no/model", "--task", "vqa", "--data", "x"], "not a model directory"),
        (["pretrain", "--config", "/no/config.yaml"], "does not exist"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (argv, err)


def test_gallery_counts_each_image_once():
    ids = torch.arange(12).view(6, 2)
    batch = Batch(input_ids=ids, attention_mask=torch.ones(6, 2, dtype=torch.bool),
                  region_features=torch.arange(6.0).view(6, 1, 1), region_boxes=torch.zeros(6, 1, 4),
                  region_mask=torch.ones(6, 1, dtype=torch.bool), image_ids=["a", "a", "b", "b", "b", "c"],
                  captions=[["1", "2"], ["1", "2"], ["3"], ["3"], ["3"], ["4"]])
    gallery = gather_gallery([batch], limit=None)
    assert gallery.image_ids == ["a", "b", "c"]
    assert gallery.owner.tolist() == [0, 0, 1, 1, 1, 2]
    assert gallery.images[0]["region_features"].view(-1).tolist() == [0.0, 2.0, 5.0]
    limited = gather_gallery([batch], limit=2)
    assert limited.image_ids == ["a", "b"] and limited.owner.tolist() == [0, 0, 1, 1, 1]
