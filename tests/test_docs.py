"""The documentation: the site builds with warnings as errors, and every python example runs."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
ANY_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def test_site_builds_strict(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    assert [p.name for p in PAGES if p.name not in nav] == []


@pytest.mark.parametrize("page", [p for p in PAGES if BLOCK.search(p.read_text())], ids=lambda p: p.name)
def test_python_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(BLOCK.findall(page.read_text()), 1):
        exec(compile(block, f"{page.name} example {number}", "exec"), namespace)  # noqa: S102


def test_config_reference_is_generated_from_the_classes():
    done = subprocess.run([sys.executable, "tools/gen_config_reference.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 0, "docs/reference.md is stale: run python tools/gen_config_reference.py"


@pytest.mark.slow
def test_own_data_walkthrough_runs_as_written(tmp_path, monkeypatch, capsys):
    """docs/own-data.md top to bottom: its python block, then every `vlbert` command of its bash
    blocks (install lines are what `make test` already did)."""
    import shlex

    from vlbert.cli import main

    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    ran = 0
    for language, block in ANY_BLOCK.findall((ROOT / "docs" / "own-data.md").read_text()):
        if language == "python":
            exec(compile(block, "own-data.md", "exec"), namespace)  # noqa: S102
        elif language == "bash":
            for line in block.splitlines():
                if line.startswith("vlbert "):
                    assert main(shlex.split(line)[1:]) == 0, line
                    ran += 1
    assert ran == 5
    assert (tmp_path / "runs" / "my-vqa" / "model" / "README.md").is_file()
    assert "vqa_acc" in (tmp_path / "runs" / "my-vqa" / "val.json").read_text()
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines[-3:]) == 3 and all(0.0 <= float(line.split()[0]) <= 1.0 for line in lines[-3:])
