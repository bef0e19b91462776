"""The README's and the docs' shell commands, run for real as a user would type them, page by
page in a fresh folder, at tiny sizes: image counts shrink, every training run stops after 2 steps,
and the quickstart runs its smoke plan. A command whose input (a dataset, a config's data root, a
checkpoint) is not on this machine is skipped, and each page's count of commands run is pinned,
so a command that stops running (or a page that loses its runnable commands) fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, shell_commands
from vlbert.cli import main

pytestmark = pytest.mark.slow

# How many commands of each page run here; the others need public datasets, GPUs or checkpoints.
RUNS = {"README.md": 6, "training.md": 10, "data.md": 2, "finetuning.md": 11}
SMALL = {"--num-images": "48", "--num-val": "8", "--num-test": "8", "--num-pretrain": "16"}
TRAINING = {"pretrain", "finetune"}
PATH_FLAGS = {"--data", "--images", "--image", "--captions", "--annotations", "--questions", "--features", "--model"}
PATH_KEYS = ("data.root=", "model.init=")


def tiny(words: list[str]) -> list[str]:
    """The command at test size: small image counts, 2 training steps, the quickstart's smoke plan."""
    words = [SMALL.get(words[i - 1], word) if i else word for i, word in enumerate(words)]
    if words[0] in TRAINING:
        words += ["train.max_steps=2", "train.progress=false", "data.batch_size=8"]
    if words[0] == "quickstart":
        words += ["--plan", "smoke"]
    return words


def missing_input(words: list[str], cwd: Path) -> str | None:
    """The first input path the command names that does not exist in `cwd`, if any."""
    paths = [words[i + 1] for i, word in enumerate(words[:-1]) if word in PATH_FLAGS]
    paths += [word.split("=", 1)[1] for word in words if word.startswith(PATH_KEYS)]
    if "--config" in words:
        config = yaml.safe_load((ROOT / words[words.index("--config") + 1]).read_text())
        if not any(word.startswith("data.root=") for word in words):
            paths.append(config["data"]["root"])
    return next((path for path in paths if not (cwd / path).exists()), None)


def run_page(page: Path, cwd: Path) -> tuple[list[str], list[str]]:
    """Run the page's `vlbert` commands in order; return the commands run and those skipped."""
    ran, skipped = [], []
    for words in shell_commands(page.read_text()):
        if words[0] != "vlbert":  # make, git, torchrun (GPUs), python tools/... (a checkpoint)
            skipped.append(" ".join(words))
            continue
        args = tiny(words[1:])
        absent = missing_input(args, cwd)
        if absent is not None:
            skipped.append(f"{' '.join(words)}  (needs {absent})")
            continue
        assert main(args) == 0, f"{page.name}: `{' '.join(words)}` failed (run as `vlbert {' '.join(args)}`)"
        ran.append(" ".join(words))
    return ran, skipped


@pytest.mark.parametrize("name", sorted(RUNS))
def test_page_commands_run_as_written(name, tmp_path, monkeypatch, capsys):
    page = ROOT / name if name == "README.md" else ROOT / "docs" / name
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "configs").symlink_to(ROOT / "configs")  # commands name configs/ relative to the repository
    ran, skipped = run_page(page, tmp_path)
    assert len(ran) == RUNS[name], f"ran {ran}\nskipped {skipped}"
    out = capsys.readouterr().out
    if name == "README.md":  # the verbs' outputs, as the README promises them
        assert (tmp_path / "data" / "soc" / "examples" / "test-000.png").is_file()
        assert (tmp_path / "runs" / "vqa" / "model" / "config.json").is_file()
        assert re.search(r"vqa_acc", out)
        assert (tmp_path / "runs" / "qs" / "report.json").is_file()


def test_skip_rule_names_the_missing_input(tmp_path):
    (tmp_path / "data" / "soc").mkdir(parents=True)
    assert missing_input(["evaluate", "--model", "runs/x/model", "--data", "data/soc"], tmp_path) == "runs/x/model"
    assert missing_input(["pretrain", "data.root=data/soc"], tmp_path) is None
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    assert missing_input(["finetune", "vqa", "--config", "configs/vqa_vqav2.yaml"], tmp_path) == "data/vqav2"
    assert tiny(["make-shards", "sort-of-clevr", "--num-images", "10000", "--out", "d"])[3] == "48"
    assert tiny(["pretrain", "train.max_steps=500"])[-3:] == ["train.max_steps=2", "train.progress=false",
                                                              "data.batch_size=8"]
