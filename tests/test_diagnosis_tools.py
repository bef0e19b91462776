"""tools/loss_summary.py and tools/retrieval_diagnosis.py, the commands behind the README's loss
and retrieval-diagnosis figures."""

import importlib.util
import json
import shutil
from pathlib import Path

import vlbert
from vlbert.data.sources.sort_of_clevr.captions import parse_description

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loss_summary_averages_each_end_and_lists_validation(tmp_path, capsys):
    rows = [{"step": s, "loss": float(s), "loss_itc": 10.0 - s} for s in range(1, 11)]
    rows.insert(5, {"step": 5, "eval_itm_acc": 0.7})
    (tmp_path / "metrics.json").write_text(json.dumps(rows))
    assert _tool("loss_summary").main([str(tmp_path), "--rows", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "loss: 2.000 -> 9.000 (mean of the first / last 3 logged steps)"  # (1+2+3)/3, (8+9+10)/3
    assert out[2] == "loss_itc: 8.000 -> 1.000 (mean of the first / last 3 logged steps)"
    assert json.loads(out[3]) == {"step": 5, "eval_itm_acc": 0.7}


def test_retrieval_diagnosis_reports_recall_and_confusions(tmp_path, minilm_path, capsys):
    from vlbert.data.sources.sort_of_clevr.shards import make_sort_of_clevr_shards

    make_sort_of_clevr_shards(tmp_path / "shards", {"train": 2, "test": 12}, shard_size=6, regions=True)
    model_dir = tmp_path / "model"
    vlbert.create_model("tiny", task="retrieval", vocab_size=30522, v_feature_size=363,
                        max_position_embeddings=128).save_pretrained(model_dir)
    shutil.copy(Path(minilm_path) / "vocab.txt", model_dir / "vocab.txt")
    tool = _tool("retrieval_diagnosis")
    assert tool.main([str(model_dir), str(tmp_path / "shards"), "--limit", "10", "--k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("itc: 10 captions, 10 images, t2i R@1 ")
    assert lines[1].startswith("two-stage k=3: 10 captions, 10 images")
    wrong = int(lines[2].split("ITC top-1 wrong: ")[1].split(";")[0])
    assert 0 < wrong <= 10  # an untrained model


def test_cells_and_shapes_are_compared_per_colour():
    tool = _tool("retrieval_diagnosis")
    a = parse_description("a red circle in the top left, a green square in the center, a blue circle in the "
                          "bottom right, an orange square in the top right, a gray circle in the bottom left and "
                          "a yellow square in the middle left; from left to right: red, gray, yellow, green, "
                          "blue, orange; from top to bottom: red, orange, yellow, green, gray, blue.")
    assert a is not None
    b = parse_description("a red circle in the top left, a green square in the center, a blue circle in the "
                          "center, an orange square in the top right, a gray circle in the bottom left and "
                          "a yellow circle in the middle left; from left to right: red, gray, yellow, green, "
                          "blue, orange; from top to bottom: red, orange, yellow, green, gray, blue.")
    assert b is not None
    assert tool.cells_shared(a, a) == 6 and tool.cells_shared(a, b) == 5
    assert tool.same_shapes(a, a) and not tool.same_shapes(a, b)


def test_pretrain_runs_checks_every_checkpoint_and_reads_back_its_table(tmp_path, capsys):
    tool = _tool("pretrain_runs")
    out = tmp_path / "runs.jsonl"
    argv = ["--seed", "1", "--name", "tiny", "--work", str(tmp_path / "work"), "--out", str(out), "--check-every", "2",
            "--plan", "pretrain_steps=4", "pretrain_batch_size=8", "pretrain_images=40", "train_images=24",
            "val_images=6", "test_images=4", "vocab_records=40"]
    assert tool.main(argv) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["step"] for p in row["curve"]] == [2, 4]  # a mirror check per checkpoint, in order
    assert all(0.0 <= p[axis] <= 1.0 for p in row["curve"] for axis in ("horizontal", "vertical"))
    assert row["plan"][:2] == ["pretrain_steps=4", "pretrain_batch_size=8"] and row["seed"] == 1
    capsys.readouterr()
    assert tool.main(["--table", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("tiny | 1 | ")
    try:
        tool.main(["--plan", "pretrain_stepz=4"])
    except SystemExit as error:
        assert "QuickstartPlan has no field 'pretrain_stepz'" in str(error)
    else:
        raise AssertionError("an unknown plan field was accepted")


def test_quickstart_runs_records_a_whole_run_with_its_plan_and_reads_back_its_table(tmp_path, capsys):
    tool = _tool("quickstart_runs")
    out = tmp_path / "runs.jsonl"
    argv = ["--seed", "2", "--base", "smoke", "--name", "tiny", "--work", str(tmp_path / "work"), "--out", str(out),
            "--plan", "pretrain_captions=each", "retrieval_steps=3", "vqa_first_subtypes=closest,furthest"]
    assert tool.main(argv) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["seed"] == 2 and row["plan"] == argv[-3:]
    config = (tmp_path / "work" / "tiny-s2" / "pretrain" / "config.yaml").read_text()
    assert "train_captions: each" in config  # the plan field reached the pre-training stage
    first = (tmp_path / "work" / "tiny-s2" / "vqa-first" / "config.yaml").read_text()
    assert "question_subtypes:\n  - closest\n  - furthest\n" in first  # a tuple field from a comma-separated list
    assert row["stage_seconds"].keys() >= {"pretrain", "vqa", "retrieval", "caption"}
    assert 0.0 <= row["vqa"]["closest_acc"] <= 1.0 and 0.0 <= row["retrieval"]["t2i_r1"] <= 1.0
    capsys.readouterr()
    assert tool.main(["--table", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("tiny | 2 | ")
