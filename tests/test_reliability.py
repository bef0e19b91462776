"""Crashes and bad files: a real SIGKILL mid-run, a kill while a checkpoint is written, a
malicious pickle, and a checkpoint that does not fit the model."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vlbert
from vlbert.cli import main
from vlbert.engine.checkpoint import STATE_NAME, latest_checkpoint, load_trainer_state

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
TINY = ["model.name=tiny", "model.overrides.v_feature_size=363", "model.overrides.v_target_size=12",
        "data.batch_size=8", "data.max_length=24", "train.progress=false", "train.save_every=10",
        "train.max_steps=120", "train.keep_checkpoints=2", "data.val_split=null"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability") / "shards"
    assert main(["make-shards", "sort-of-clevr", "--num-images", "30", "--num-val", "0", "--num-test", "0",
                 "--region-features", "--out", str(root)]) == 0
    return root


def _finetune(shards: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "vlbert.cli", "finetune", "vqa", f"data.root={shards}", f"out_dir={out}", *TINY]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_the_uninterrupted_run(shards, tmp_path):
    """120 steps (30 images x 20 questions / 8 = 75 batches an epoch, so resuming crosses an
    epoch), a checkpoint every 10; the run is killed with SIGKILL once a checkpoint past step 20
    exists, at whatever step it has reached, and then started again with the same command."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_finetune(shards, whole), env=ENV, check=True, capture_output=True, timeout=300)

    process = subprocess.Popen(_finetune(shards, killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        found = latest_checkpoint(killed / "checkpoints")
        if found is not None and int(found.name.split("-")[1]) >= 30:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert not (killed / "model").exists(), "the run finished before the kill; the test proves nothing"
    killed_at = latest_checkpoint(killed / "checkpoints")
    assert killed_at is not None and int(killed_at.name.split("-")[1]) < 120

    subprocess.run(_finetune(shards, killed), env=ENV, check=True, capture_output=True, timeout=300)
    expected, resumed = load_file(whole / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    assert expected.keys() == resumed.keys()
    for name, tensor in expected.items():
        assert torch.equal(resumed[name], tensor), name


KILL_DURING_SAVE = """
import os, signal, sys, torch
import vlbert
from vlbert.data.pipeline.batch import Batch
from vlbert.engine.trainer import TrainConfig, Trainer
from vlbert.engine.objectives import OBJECTIVES, ObjectiveConfig
from tests.helpers import vqa_batch
model = vlbert.create_model("tiny", task="vqa", num_answers=10)
cfg = TrainConfig(max_steps=2, save_every=1, progress=False)
trainer = Trainer(model, lambda m, b: OBJECTIVES["vqa"](m, b, ObjectiveConfig()), cfg, sys.argv[1], device="cpu")
real_save = torch.save
def dying_save(obj, f, *args, **kwargs):
    if trainer.state.step == 2:  # the second checkpoint: half a file, then the power goes
        with open(f, "wb") as handle:
            handle.write(b"partial")
            handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)
torch.save = dying_save
trainer.fit(lambda epoch, skip: iter([vqa_batch()] * (4 - skip)))
"""


def test_kill_while_writing_a_checkpoint_leaves_the_previous_one_loadable(tmp_path):
    done = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(tmp_path)], cwd=ROOT, env=ENV,
                          capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    checkpoints = tmp_path / "checkpoints"
    assert (checkpoints / ".step-00000002.tmp").is_dir(), "the kill hit the second write"
    latest = latest_checkpoint(checkpoints)
    assert latest is not None and latest.name == "step-00000001"
    assert load_trainer_state(latest)["train_state"]["step"] == 1
    reloaded = vlbert.create_model(str(latest), task="vqa")
    assert reloaded.config.num_answers == 10


class _Payload:
    """Unpickling this runs `Path(marker).touch()`: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_pickle_in_a_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    fake = tmp_path / "checkpoints" / "step-00000001"
    fake.mkdir(parents=True)
    torch.save({"train_state": _Payload(marker)}, fake / STATE_NAME)
    (tmp_path / "checkpoints" / "latest").write_text(fake.name)
    with pytest.raises(ValueError, match="refused"):
        load_trainer_state(fake)
    original = tmp_path / "pytorch_model.bin"
    torch.save({"bert.embeddings.word_embeddings.weight": _Payload(marker)}, original)
    done = subprocess.run([sys.executable, "tools/convert_vilbert.py", str(original), str(tmp_path / "out")],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not marker.exists(), "the pickle's code ran"


def test_checkpoint_that_does_not_fit_the_model_is_a_one_line_error(shards, tmp_path, capsys):
    saved = tmp_path / "small"
    vlbert.create_model("tiny", task="vqa", v_feature_size=16).save_pretrained(saved)
    argv = ["finetune", "vqa", f"data.root={shards}", f"out_dir={tmp_path / 'run'}", f"model.init={saved}",
            "model.overrides.v_feature_size=363", "train.max_steps=1", "train.progress=false", "data.val_split=null"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has shape" in err, err
    with pytest.raises(ValueError, match="has shape"):
        main(["--debug", *argv])


@pytest.mark.slow
def test_deterministic_runs_at_two_threads_are_bit_identical(shards, tmp_path):
    """Two uninterrupted identical pre-training runs with 2 intra-op threads (torch's default on a
    2-core machine) and `train.deterministic=true` end with equal weights (`torch.equal`)."""
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(2)
    try:
        for run in ("a", "b"):
            assert main(["pretrain", f"data.root={shards}", f"out_dir={tmp_path / run}", "--no-resume", *TINY,
                         "train.max_steps=20", "train.save_every=0", "train.deterministic=true"]) == 0
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(strict)
    first, second = (load_file(tmp_path / run / "model" / "model.safetensors") for run in ("a", "b"))
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        assert torch.equal(second[name], tensor), name
