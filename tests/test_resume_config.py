"""Resuming with other settings: a difference that changes the result is refused with every key
named (old -> new), or used with --override-resume (said on stderr, and the earlier configuration
kept); keys that do not change the result may differ; `config.yaml` never records values that
were not used."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.shard_factory import good_shards
from vlbert.cli import main
from vlbert.engine.checkpoint import latest_checkpoint, load_trainer_state
from vlbert.run.resume import RESUME_FREE_KEYS, compare_configs
from vlbert.runconfig import load_run_config

RUN = ["model.name=tiny", "data.val_split=null", "data.batch_size=4", "data.max_length=16", "train.progress=false",
       "train.log_every=1", "train.save_every=2", "train.optim.schedule=constant"]  # fmt: skip


def _pretrain(root: Path, out: Path, *extra: str) -> int:
    return main(["pretrain", f"data.root={root}", f"out_dir={out}", *RUN, *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Shards; a run stopped at step 4; the same run taken to step 6 in one go."""
    base = tmp_path_factory.mktemp("resume")
    root = good_shards(base / "shards", num_shards=2, per_shard=5).directory
    assert _pretrain(root, base / "four", "train.max_steps=4") == 0
    assert _pretrain(root, base / "six", "train.max_steps=6") == 0
    return {"root": root, "four": base / "four", "six": base / "six"}


def _copy(runs: dict[str, Path], tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(runs["four"], out)
    return out


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "model" / "model.safetensors")


def _saved(out: Path, name: str = "config.yaml") -> dict:
    return yaml.safe_load((out / name).read_text())


def test_a_changed_setting_is_refused_naming_each_key(runs, tmp_path, capsys):
    out = _copy(runs, tmp_path)
    saved = (out / "config.yaml").read_text()
    capsys.readouterr()
    code = _pretrain(runs["root"], out, "train.max_steps=6", "train.optim.lr=0.01", "data.batch_size=8",
                     "model.overrides.hidden_dropout_prob=0.2")
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        f"vlbert pretrain: error: {out} was trained to step 4 with other settings: data.batch_size 4 -> 8, "
        "model.overrides.hidden_dropout_prob (unset) -> 0.2, train.optim.lr 0.0001 -> 0.01; pass "
        "--override-resume to go on with the new values, or --no-resume to start over"]
    assert (out / "config.yaml").read_text() == saved  # the record is left as it was
    assert latest_checkpoint(out / "checkpoints").name == "step-00000004"
    assert torch.equal(_weights(out)["vlbert.embeddings.word_embeddings.weight"],
                       _weights(runs["four"])["vlbert.embeddings.word_embeddings.weight"])


def test_settings_that_do_not_change_the_result_may_differ(runs, tmp_path, capsys):
    out = _copy(runs, tmp_path)
    capsys.readouterr()
    assert _pretrain(runs["root"], out, "train.max_steps=6", "train.log_every=2", "train.save_every=3",
                     "train.keep_checkpoints=1") == 0
    err = capsys.readouterr().err.splitlines()
    assert "resuming at step 4: train.max_steps 4 -> 6" in err and "resuming at step 4: train.log_every 1 -> 2" in err
    assert _saved(out)["train"]["max_steps"] == 6 and _saved(out)["train"]["log_every"] == 2
    expected, resumed = _weights(runs["six"]), _weights(out)
    assert all(torch.equal(expected[name], resumed[name]) for name in expected)  # as if run in one go


def test_override_resume_uses_the_new_values_and_keeps_the_old_record(runs, tmp_path, capsys):
    out = _copy(runs, tmp_path)
    capsys.readouterr()
    assert _pretrain(runs["root"], out, "--override-resume", "train.max_steps=6", "train.optim.lr=0.01") == 0
    err = capsys.readouterr().err.splitlines()
    assert "resuming at step 4: train.optim.lr 0.0001 -> 0.01 (--override-resume: the new value is used from here on)" \
        in err and "resuming at step 4: train.max_steps 4 -> 6" in err
    history = load_trainer_state(latest_checkpoint(out / "checkpoints"))["train_state"]["history"]
    assert [(h["step"], h["lr"]) for h in history if "lr" in h] == [(1, 1e-4), (2, 1e-4), (3, 1e-4), (4, 1e-4),
                                                                    (5, 0.01), (6, 0.01)]
    assert _saved(out)["train"]["optim"]["lr"] == 0.01
    assert _saved(out, "config.until-step-4.yaml")["train"]["optim"]["lr"] == 1e-4
    expected, resumed = _weights(runs["six"]), _weights(out)
    assert not all(torch.equal(expected[name], resumed[name]) for name in expected)


def test_the_free_keys_are_documented_and_real():
    cfg = load_run_config(None, []).to_dict()
    changes, free = compare_configs(cfg, load_run_config(None, ["train.progress=false", "train.seed=3"]).to_dict())
    assert [str(c) for c in free] == ["train.progress true -> false"]
    assert [str(c) for c in changes] == ["train.seed 0 -> 3"]
    docs = (Path(__file__).resolve().parents[1] / "docs" / "distributed.md").read_text()
    for key in RESUME_FREE_KEYS:
        section, _, name = key.rpartition(".")
        assert name in (cfg[section] if section else cfg), key
        assert f"`{key}`" in docs, key
