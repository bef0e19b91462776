"""`tools/compare_finetuning.py --smoke` runs every strategy at both label fractions and prints the table."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_tool():
    spec = importlib.util.spec_from_file_location("compare_finetuning", ROOT / "tools" / "compare_finetuning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_smoke_runs_every_strategy_and_prints_the_table(tmp_path, capsys):
    pytest.importorskip("peft")
    tool = load_tool()
    assert tool.main(["--smoke", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    table = lines[lines.index("| strategy | labels | VQA accuracy | trainable params | s / step | saved MB |"):]
    rows = {(cells[0], cells[1]): cells for cells in ([c.strip() for c in line.strip("|").split("|")]
                                                      for line in table[2:])}  # fmt: skip
    assert set(rows) == {(name, labels) for name in tool.STRATEGIES for labels in ("100%", "10%")}
    for cells in rows.values():
        assert 0.0 <= float(cells[2]) <= 1.0 and float(cells[4]) > 0
    trainable = {name: int(rows[name, "100%"][3].replace(",", "")) for name in tool.STRATEGIES}
    saved = {name: float(rows[name, "100%"][5]) for name in tool.STRATEGIES}
    assert trainable["heads"] < trainable["coattention"] < trainable["full"] == trainable["llrd"]
    assert trainable["lora"] < trainable["full"] and trainable["prompt"] < trainable["lora"]
    assert saved["lora"] < saved["full"] and saved["prompt"] < saved["full"]
    assert (tmp_path / "results.jsonl").read_text().count("\n") == 18
