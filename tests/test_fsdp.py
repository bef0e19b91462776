"""`train.strategy=fsdp`: two gloo processes (FSDP2) against one, and DCP checkpoints resumed by
another number of processes (tests/fsdp_worker.py)."""

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_distributed import _run

from vlbert.engine.checkpoint import LATEST
from vlbert.engine.trainer import TrainConfig, Trainer

WORKER = ["tests/fsdp_worker.py"]
TWO = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *WORKER]


def _train(args: list[str], *runs: Path) -> list[dict]:
    _run(args, *runs)
    return [torch.load(run / "result.pt") for run in runs]


def _from_step_2(run: Path, into: Path) -> Path:
    """A fresh run directory holding `run`'s step-2 checkpoint as its latest."""
    (into / "checkpoints").mkdir(parents=True)
    shutil.copytree(run / "checkpoints" / "step-00000002", into / "checkpoints" / "step-00000002")
    (into / "checkpoints" / LATEST).write_text("step-00000002")
    return into


def _assert_weights_close(got: dict, want: dict, atol: float) -> None:
    assert got.keys() == want.keys() and len(want) > 50
    for name, weight in want.items():
        torch.testing.assert_close(got[name], weight, atol=atol, rtol=0, msg=name)


@pytest.mark.slow  # three start-ups, one of them of two processes
def test_fsdp_two_processes_match_one_and_checkpoints_cross_world_sizes(tmp_path):
    """Same global batch (8 rows, 2 accumulation steps) split 4 + 4, 4 AdamW steps, a DCP checkpoint
    at step 2. Two FSDP processes against one: first-step gradients within 1e-6 + 1e-5 relative,
    losses within 1e-6, final weights within 1e-5 (measured: 6e-8, 2.4e-7 and 1.2e-7). The step-2
    checkpoint of two processes resumed by one, and one's by two, end within 1e-5 of the
    uninterrupted runs; one's resumed by one ends bit-identical (one thread, same order). The
    evaluations at steps 2 and 4 (on the weights gathered on every process) agree within 1e-5,
    training after them still matches, and the best model is written whole."""
    (one,) = _train(WORKER, tmp_path / "one")
    two, one_to_two = _train(TWO, tmp_path / "two", _from_step_2(tmp_path / "one", tmp_path / "one-to-two"))
    two_to_one, one_to_one = _train(WORKER, _from_step_2(tmp_path / "two", tmp_path / "two-to-one"),
                                    _from_step_2(tmp_path / "one", tmp_path / "one-to-one"))
    assert one["grads"].keys() == two["grads"].keys() and len(one["grads"]) > 50
    for name, grad in one["grads"].items():
        torch.testing.assert_close(two["grads"][name], grad, atol=1e-6, rtol=1e-5, msg=name)
    assert len(one["losses"]) == 4
    torch.testing.assert_close(torch.tensor(two["losses"]), torch.tensor(one["losses"]), atol=1e-6, rtol=0)
    _assert_weights_close(two["weights"], one["weights"], atol=1e-5)
    assert len(one["evals"]) == 2  # at steps 2 and 4, on the gathered weights under fsdp, then training went on
    torch.testing.assert_close(torch.tensor(two["evals"]), torch.tensor(one["evals"]), atol=1e-5, rtol=0)
    best = load_file(tmp_path / "two" / "best" / "model.safetensors")  # gathered onto rank 0 to write it
    assert best.keys() <= two["weights"].keys() and len(best) > 50

    _assert_weights_close(two_to_one["weights"], one["weights"], atol=1e-5)
    assert two_to_one["losses"][:2] == two["losses"][:2]  # the history came with the checkpoint
    _assert_weights_close(one_to_two["weights"], two["weights"], atol=1e-5)
    for name, weight in one["weights"].items():
        assert torch.equal(one_to_one["weights"][name], weight), name

def test_strategy_is_checked_and_checkpoint_formats_are_not_mixed(tmp_path):
    import vlbert
    from vlbert.runconfig import ConfigError, load_run_config

    assert load_run_config(None, ["train.strategy=fsdp"]).train.strategy == "fsdp"
    with pytest.raises(ConfigError, match="train.strategy: expected one of ddp, fsdp, got 'zero'"):
        load_run_config(None, ["train.strategy=zero"])
    model = vlbert.create_model("tiny", task="vqa", num_answers=4)
    with pytest.raises(ValueError, match="train.strategy must be one of ddp, fsdp, got 'zero'"):
        Trainer(model, lambda m, b: None, TrainConfig(strategy="zero", progress=False), tmp_path, device="cpu")
    ddp = Trainer(model, lambda m, b: None, TrainConfig(progress=False), tmp_path, device="cpu")
    ddp.save()
    fsdp = Trainer(model, lambda m, b: None, TrainConfig(strategy="fsdp", progress=False), tmp_path, device="cpu")
    with pytest.raises(ValueError, match="written with train.strategy=ddp; resume it with that strategy, not fsdp"):
        fsdp.resume()


def test_one_process_fsdp_checkpoint_keeps_tied_weights_and_the_itc_temperature(tmp_path):
    """Pre-training's model under `fsdp` in one process: the 0-d ITC temperature trains as [1]
    (FSDP shards no scalar) and is saved back as 0-d; a DCP checkpoint restores every weight,
    the MLM decoder still tied to the word embeddings."""
    import vlbert

    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="pretraining")
    trainer = Trainer(model, lambda m, b: None, TrainConfig(strategy="fsdp", progress=False), tmp_path, device="cpu")
    assert model.itc_head.logit_scale.shape == (1,)
    with torch.no_grad():
        model.itc_head.logit_scale.fill_(1.5)
    trainer.save()
    torch.manual_seed(1)
    other = vlbert.create_model("tiny", task="pretraining")
    resumed = Trainer(other, lambda m, b: None, TrainConfig(strategy="fsdp", progress=False), tmp_path, device="cpu")
    assert resumed.resume()
    saved, restored = trainer.model_state(), resumed.model_state()
    assert restored["itc_head.logit_scale"].shape == () and float(restored["itc_head.logit_scale"]) == 1.5
    assert saved.keys() == restored.keys()
    for name, value in saved.items():
        assert torch.equal(restored[name], value), name
    assert other.mlm_head.decoder.weight is other.vlbert.embeddings.word_embeddings.weight
