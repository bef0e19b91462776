"""The core library without the applications' extras (matplotlib, pycocoevalcap, tensorboard):
it imports, builds every preset and trains; what needs an extra says which one in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import tomllib

from tests.helpers import ROOT
from vlbert.presets import PRESETS

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
BLOCKED = ("matplotlib", "pycocoevalcap", "tensorboard", "lmdb")

# In one process (importing torch and transformers is most of its time). The extras look
# uninstalled: a None entry in sys.modules makes `import` raise ModuleNotFoundError and
# `importlib.util.find_spec` answer None, as for a missing package (a meta-path finder that raises
# would also break the find_spec probes in transformers' and accelerate's imports).
SCRIPT = """
import json, sys
sys.modules.update(dict.fromkeys(BLOCKED))
import torch
import vlbert
import vlbert.cli, vlbert.data, vlbert.engine.trainer, vlbert.eval.metrics, vlbert.run.training
from vlbert._extras import MissingExtra
from vlbert.engine.trainer import TrainConfig, Trainer
from vlbert.eval.metrics import caption_scores
from vlbert.presets import PRESETS

out = {"params": {}}
with torch.device("meta"):  # the full-size presets without allocating their weights
    for name in PRESETS:
        out["params"][name] = sum(p.numel() for p in vlbert.create_model(name, task="pretraining").parameters())
try:
    caption_scores({"a": "x"}, {"a": ["x"]})
except MissingExtra as error:
    out["caption_scores"] = str(error)
out["quickstart"] = vlbert.cli.main(["quickstart", "--plan", "smoke", "--out", OUT + "/qs"])
trainer = Trainer(vlbert.create_model("tiny", task="vqa"), None, TrainConfig(max_steps=1, progress=False), OUT)
out["writer"] = repr(trainer.writer)
out["imported"] = sorted(m for m, v in sys.modules.items() if m.split(".")[0] in BLOCKED and v is not None)
print(json.dumps(out))
"""


@pytest.mark.slow
def test_core_without_the_extras(tmp_path):
    script = f"BLOCKED, OUT = {BLOCKED!r}, {str(tmp_path)!r}\n" + textwrap.dedent(SCRIPT)
    done = subprocess.run([sys.executable, "-c", script], env=ENV, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert list(out["params"]) == list(PRESETS) and all(n > 0 for n in out["params"].values())
    assert out["params"]["vilbert-base"] > 200_000_000  # the full model, not a stub
    assert out["imported"] == []
    # the library function names its extra; the CLI says it in one line, before any stage runs
    assert out["caption_scores"] == "caption scores (BLEU-4, CIDEr) needs pycocoevalcap: pip install 'vlbert[eval]'"
    assert out["quickstart"] == 2 and not (tmp_path / "qs").exists()
    quickstart = "vlbert quickstart: error: the quickstart's figures needs matplotlib: pip install 'vlbert[plots]'\n"
    assert quickstart in done.stderr
    # training goes on without TensorBoard, with one warning line naming the extra
    assert out["writer"] == "None"
    assert "TensorBoard logging needs tensorboard: pip install 'vlbert[train]'; training without it" in done.stderr


def test_the_extras_are_not_core_dependencies_and_dev_installs_them():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    assert not any(name in core for name in BLOCKED)
    extras = project["optional-dependencies"]
    assert extras["plots"] == ["matplotlib"] and extras["eval"] == ["pycocoevalcap"]
    assert "tensorboard" in extras["train"]
    assert extras["lmdb"] == ["lmdb"] and extras["extract"] == ["torchvision"]
    (own,) = [entry for entry in extras["dev"] if entry.startswith("vlbert[")]
    assert set(own.removeprefix("vlbert[").removesuffix("]").split(",")) == {"plots", "eval", "train", "lmdb", "extract"}
