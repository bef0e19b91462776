"""The quickstart report: report.json keys and values, the table's met/missed marks, the figures."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from vlbert.data.sources.sort_of_clevr.shards import make_sample
from vlbert.quickstart.figures import write_figures
from vlbert.quickstart.report import format_table, report_dict, write_report
from vlbert.quickstart.results import QuickstartResults, RetrievalExample, StageResult, VQAExample

STAGES = ("pretrain", "vqa", "question-only", "retrieval", "caption", "transfer-vqa-0.1-pretrained",
          "transfer-vqa-0.1-scratch", "retrieval-scratch")
TRANSFER = {"vqa": {"1.0": {"pretrained": 0.97, "scratch": 0.95}, "0.1": {"pretrained": 0.81, "scratch": 0.62},
                    "0.01": {"pretrained": 0.70, "scratch": 0.50}},
            "retrieval": {"pretrained": 0.94, "scratch": 0.40}, "vqa_steps": 400, "retrieval_steps": 700}


def _history(steps: int, eval_key: str, parts: tuple[str, ...] = ()) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []
    for step in range(10, steps + 1, 10):
        loss = 3.0 * math.exp(-step / 80) + 0.1
        rows.append({"step": step, "loss": loss, "lr": 1e-4, **{f"loss_{p}": loss / 2 for p in parts}})
        if step % 50 == 0:
            rows.append({"step": step, f"eval_{eval_key}": 1 - math.exp(-step / 60), "eval_loss": loss})
    return rows


def _vqa_examples(count: int) -> list[VQAExample]:
    examples = []
    for i in range(count):
        sample = make_sample(i, split="test")
        q = sample.record.questions[i * 3 % len(sample.record.questions)]
        predicted = q.answers[0] if i % 3 else "circle" if q.answers[0] != "circle" else "square"
        examples.append(VQAExample(sample.image, q.question, predicted, q.answers[0], q.type))
    return examples


def _retrieval_examples(count: int) -> list[RetrievalExample]:
    samples = [make_sample(i, split="test") for i in range(count + 3)]
    examples = []
    for i, sample in enumerate(samples[:count]):
        own = sample.record.captions[0]
        others = [samples[i + k].record.captions[0] for k in (1, 2)]
        top = [(own, True), (others[0], False), (others[1], False)] if i % 2 == 0 else \
              [(others[0], False), (own, True), (others[1], False)]
        examples.append(RetrievalExample(sample.image, own, top))
    return examples


def make_results(relational: float = 0.95, ablation: bool = True) -> QuickstartResults:
    stages = [StageResult(name, 10.0 + i, 100, {"acc": 0.5}, _history(100, "acc", ("mlm", "itm") if i == 0 else ()))
              for i, name in enumerate(STAGES if ablation else STAGES[:5])]
    return QuickstartResults(
        vqa={"relational_acc": relational, "nonrelational_acc": 0.985, "question_only_acc": 0.412,
             "question_only_relational_acc": 0.433, "question_only_nonrelational_acc": 0.391,
             "shape_acc": 0.991, "horizontal_acc": 0.982, "count_acc": 0.871, "grounding_shape": 0.955,
             "grounding_horizontal": 0.83, "grounding_vertical": 0.81, "grounding_attention_shape": 0.2},
        retrieval={"t2i_r1": 0.942, "t2i_r5": 0.987, "t2i_r10": 0.996, "i2t_r1": 0.873, "i2t_r5": 0.964,
                   "i2t_r10": 0.991, "num_images": 1000, "t2i_r1_itc": 0.901, "i2t_r1_itc": 0.85},
        caption={"bleu4": 0.612, "cider": 3.456},
        pretrain={"mlm_acc": 0.7, "itm_acc": 0.9, "itm_mirror_preferred": 0.934, "itm_mirror_images": 1000.0,
                  "itm_mirror_vertical_preferred": 0.921},
        transfer=TRANSFER if ablation else None,
        stages=stages,
        vqa_examples=_vqa_examples(8),
        retrieval_examples=_retrieval_examples(4),
        wall_seconds=754.2,
        machine="2 CPU cores (test), torch 2.x",
        settings={"model": "tiny", "images": 2000, "pretrain_steps": 100},
    )


def _line(table: str, label: str) -> str:
    (line,) = [line for line in table.splitlines() if line.strip().startswith(label + " ")]
    return line


def test_report_json_has_every_key_with_its_value(tmp_path: Path) -> None:
    results = make_results()
    report = json.loads(write_report(results, tmp_path).read_text())
    assert report["vqa"]["relational_acc"] == 0.95
    assert report["vqa"]["nonrelational_acc"] == 0.985
    assert report["vqa"]["question_only_acc"] == 0.412
    assert report["retrieval"]["t2i_r1"] == 0.942 and report["retrieval"]["i2t_r1"] == 0.873
    assert report["retrieval"]["t2i_r1_itc"] == 0.901
    assert report["caption"] == {"bleu4": 0.612, "cider": 3.456}
    assert report["pretrain"]["itm_mirror_preferred"] == 0.934
    assert report["pretrain"]["itm_mirror_vertical_preferred"] == 0.921
    # the transfer table's keys, as any tool reads them
    for fraction in ("1.0", "0.1", "0.01"):
        assert set(report["transfer"]["vqa"][fraction]) == {"pretrained", "scratch"}
    assert report["transfer"]["vqa"]["0.1"] == {"pretrained": 0.81, "scratch": 0.62}
    assert report["transfer"]["retrieval"] == {"pretrained": 0.94, "scratch": 0.40}
    gains = {t["key"]: t["value"] for t in report["targets"]}
    assert gains["transfer.vqa.0.1.gain"] == pytest.approx(0.19) and gains["transfer.vqa.1.0.gain"] == pytest.approx(0.02)
    assert gains["transfer.retrieval.gain"] == pytest.approx(0.54)
    assert gains["retrieval.two_stage_gain"] == pytest.approx(0.041)
    assert [s["name"] for s in report["stages"]] == list(STAGES)
    assert report["stages"][1] == {"name": "vqa", "seconds": 11.0, "steps": 100, "metrics": {"acc": 0.5}}
    assert report["wall_seconds"] == 754.2 and report["machine"] == results.machine
    assert report["settings"] == results.settings
    published = report["published"]["sort_of_clevr"]
    assert published["relational_acc"] == {"CNN+MLP": 0.63, "CNN+RN": 0.94}
    assert all(t["met"] for t in report["targets"]) and len(report["targets"]) == 12
    assert gains["vqa.grounding_shape"] == 0.955 and gains["vqa.grounding_vertical"] == 0.81
    assert report == json.loads(json.dumps(report_dict(results)))


@pytest.mark.parametrize("relational, status", [(0.96, "met"), (0.95, "met"), (0.949, "MISSED")])
def test_table_marks_relational_target(relational: float, status: str) -> None:
    table = format_table(make_results(relational))
    line = _line(table, "relational accuracy")
    assert f"{relational:.3f}" in line and "0.63" in line and "0.94" in line
    assert line.split()[-1] == status


def test_table_shows_every_value() -> None:
    table = format_table(make_results())
    for value in ("0.985", "0.412", "0.433", "0.391", "0.942", "0.987", "0.996", "0.873", "0.964", "0.991",
                  "0.612", "3.456", "0.810", "0.620", "0.190", "0.94-0.98", "0.901", "0.041", "0.934", "0.540",
                  "0.921"):
        assert value in table, value
    assert _line(table, "non-relational accuracy").split()[-1] == "met"
    assert _line(table, "horizontal questions").split()[-1] == "0.982" and "0.871" in _line(table, "count questions")
    assert _line(table, "text->image R@1").split()[-1] == "met"
    assert _line(table, "ITM: true over mirrored description").split()[-1] == "met"
    assert _line(table, "ITM: true over upside-down description").split()[-1] == "0.921"  # reported, no target
    assert _line(table, "answer map on the named object, shape (removal)").split()[-1] == "met"
    assert "0.955" in _line(table, "answer map on the named object, shape (removal)")
    assert _line(table, "the same, co-attention map").split()[-1] == "0.200"  # beside it, no target
    assert "12 min 34 s" in table and "targets met: 12/12" in table
    for stage in STAGES:
        assert stage in table


def test_table_marks_misses_and_small_retrieval_sets() -> None:
    results = make_results()
    transfer = {**TRANSFER, "vqa": {**TRANSFER["vqa"], "0.1": {"pretrained": 0.64, "scratch": 0.62}}}
    results = replace(results, retrieval={**results.retrieval, "t2i_r1": 0.95, "num_images": 200},
                      transfer=transfer, vqa={**results.vqa, "nonrelational_acc": 0.97})
    table = format_table(results)
    assert "MISSED" in _line(table, "non-relational accuracy")
    # R@1 0.95 over 200 images is not the target's R@1 over 1000 (a smaller gallery is easier)
    assert _line(table, "text->image R@1").endswith("not shown (over 200 images, target is over 1000)")
    checks = {c["key"]: c for c in report_dict(results)["targets"]}
    assert not checks["transfer.vqa.0.1.gain"]["met"] and checks["transfer.vqa.0.01.gain"]["met"]
    assert "targets met: 8/12" in table  # the two-stage gain too is over 200 images, not 1000
    retrieval = next(c for c in report_dict(results)["targets"] if c["key"] == "retrieval.t2i_r1")
    assert retrieval["met"] is False and retrieval["value"] == 0.95
    exact = replace(results, retrieval={**results.retrieval, "t2i_r1": 0.95, "num_images": 1000})
    assert _line(format_table(exact), "text->image R@1").split()[-1] == "met"


def test_without_ablation_no_transfer_keys(tmp_path: Path) -> None:
    results = make_results(ablation=False)
    report = json.loads(write_report(results, tmp_path).read_text())
    assert "transfer" not in report
    assert not any(t["key"].startswith("transfer") for t in report["targets"])
    table = format_table(results)
    assert "transfer" not in table and "targets met: 8/8" in table
    # the example figures do not depend on the ablation: leave them out, which must skip them
    results = replace(results, vqa_examples=[], retrieval_examples=[])
    assert [p.name for p in write_figures(results, tmp_path)] == ["loss_curves.png"]


def test_figures_are_sensible_pngs(tmp_path: Path) -> None:
    paths = write_figures(make_results(), tmp_path)
    assert [p.name for p in paths] == ["loss_curves.png", "vqa_examples.png", "retrieval_examples.png"]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert 600 <= image.width <= 3000 and 300 <= image.height <= 3000, (path.name, image.size)


def test_plans_on_the_command_line(monkeypatch) -> None:
    from dataclasses import fields

    from vlbert.cli import parse_args
    from vlbert.commands import quickstart
    from vlbert.quickstart.plan import QuickstartPlan

    chosen = {}
    monkeypatch.setattr("vlbert.quickstart.pipeline.run_quickstart", lambda out, ablation, plan: chosen.update(plan=plan))
    for argv, expected in ((["quickstart"], QuickstartPlan()), (["quickstart", "--plan", "long"], QuickstartPlan.long()),
                           (["quickstart", "--smoke"], QuickstartPlan.smoke())):
        assert quickstart.run(parse_args(argv)) == 0 and chosen["plan"] == expected
    assert quickstart.run(parse_args(["quickstart", "--seed", "2"])) == 0 and chosen["plan"] == QuickstartPlan(seed=2)
    default, long = QuickstartPlan(), QuickstartPlan.long()
    steps = [f.name for f in fields(QuickstartPlan) if f.name.endswith("_steps") and f.name != "warmup_steps"]
    assert all(getattr(long, name) >= 3 * getattr(default, name) for name in steps)
    with pytest.raises(SystemExit):
        parse_args(["quickstart", "--plan", "huge"])


def test_plan_refuses_settings_the_run_config_would_refuse_stages_later():
    from vlbert.quickstart.plan import QuickstartPlan

    for bad, message in (({"train_captions": "all"}, "train_captions must be one of auto, each, random, first"),
                         ({"retrieval_mode": "itm"}, "retrieval_mode must be one of two-stage, all-pairs, itc"),
                         ({"retrieval_mode": "two-stage", "retrieval_itm": False}, "set retrieval_itm=True"),
                         ({"vqa_first_steps": 2500}, r"vqa_first_steps must be in \[0, vqa_steps\), got 2500"),
                         ({"transfer_fractions": (1.0, 0.0)}, r"transfer_fractions must be fractions in \(0, 1\]")):
        with pytest.raises(ValueError, match=message):
            QuickstartPlan(**bad)
    assert QuickstartPlan(retrieval_mode="itc", retrieval_itm=False).retrieval_mode == "itc"
