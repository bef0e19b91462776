"""tools/sort_of_clevr_position_probe.py: it picks the asked-about region, and it runs."""

import importlib.util
import itertools
from pathlib import Path

import pytest

from vlbert.data.sources.sort_of_clevr.shards import make_sort_of_clevr_shards

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def probe_tool():
    spec = importlib.util.spec_from_file_location("position_probe", ROOT / "tools" / "sort_of_clevr_position_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("soc")
    make_sort_of_clevr_shards(out, {"train": 16, "test": 8}, regions=True)
    return out


def test_the_kept_region_answers_the_position_questions(probe_tool, shards, tmp_path):
    cfg = probe_tool.run_config(str(shards), str(tmp_path))
    parts = probe_tool.build_parts(cfg, tmp_path)
    checked = 0
    for batch in itertools.islice(probe_tool.batches(cfg, parts, "test", False, 32), 3):
        batch = probe_tool.asked_region_only(batch)
        assert batch.region_mask.sum(1).eq(1).all()  # one region per question
        for row, (subtype, answers) in enumerate(zip(batch.question_subtypes, batch.answers)):
            x1, y1, x2, y2 = batch.region_boxes[row][batch.region_mask[row]][0].tolist()
            if subtype == "horizontal":
                assert answers[0] == ("left" if x1 + 5 / 75 < 0.5 else "right")
                checked += 1
            elif subtype == "vertical":
                assert answers[0] == ("top" if y1 + 5 / 75 < 0.5 else "bottom")
                checked += 1
    assert checked >= 20


def test_the_probe_runs(probe_tool, shards, capsys):
    assert probe_tool.main(["--data", str(shards), "--steps", "2", "--every", "1", "--test-batches", "1",
                            "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    assert out.count("all regions  step") == 2 and out.count("asked region only  step") == 2
    assert out.strip().splitlines()[-1].startswith("after 2 steps: all regions 0.")
