"""Skipped input is said, not only counted: `vlbert pretrain` prints each epoch's skips on stderr
(whatever the logging setup), and `vlbert evaluate` prints them and writes them into its metrics
JSON. One bad sample of each kind: json that is not JSON, a truncated tar, a corrupt PNG, NaN
region features."""

from __future__ import annotations

import json
import logging
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.shard_factory import Sample, good_sample, make_meta, make_regions, truncate_file, write_shards
from vlbert.cli import main

RUN = ["data.val_split=null", "data.batch_size=4", "data.max_length=16", "train.max_steps=4", "train.progress=false"]
# kind -> (model preset, the epoch's line, the evaluation's data entry)
CASES = {
    "bad_json": ("tiny", "skipped 1 of 11 samples: bad_json 1", {"bad_json": 1}),
    "corrupt_png": ("tiny-vit", "skipped 1 of 11 samples: corrupt_image 1", {"corrupt_image": 1}),
    "nan_features": ("tiny", "skipped 1 of 11 samples: bad_features 1", {"bad_features": 1}),
    "truncated_tar": ("tiny", "skipped 3 of 11 samples: incomplete_sample 1, missing_samples 2; "
                              "broken shards: truncated_tar 1", {"incomplete_sample": 1, "missing_samples": 2,
                                                                  "truncated_tar": 1}),
}  # fmt: skip


def _bad_sample(kind: str) -> Sample:
    sample = good_sample(99)
    sample.key, sample.meta = "bad", make_meta("bad", ["a caption of the bad sample"])
    if kind == "bad_json":
        sample.raw_json = b"this is not JSON"
    elif kind == "corrupt_png":
        sample.image = b"\x89PNG\r\n\x1a\n and then nothing a decoder can use"
    elif kind == "nan_features":
        sample.regions = make_regions(3, seed=99)
        sample.regions.features[1, 5] = np.nan
    return sample


def write_bad_shards(root: Path, kind: str) -> Path:
    """Eleven samples in two shards (6 + 5); one of them bad as `kind` says. A truncated tar cuts
    the second shard inside its third sample (that one is dropped, the last two are lost)."""
    first = [good_sample(i) for i in range(5)]
    second = [good_sample(10 + i) for i in range(5)]
    if kind != "truncated_tar":
        first.insert(3, _bad_sample(kind))
    else:
        first.append(good_sample(5))
    shard_set = write_shards(root, [first, second])
    if kind == "truncated_tar":
        with tarfile.open(shard_set.urls[1]) as tar:
            member = tar.getmember("s0012.png")
        truncate_file(shard_set.urls[1], member.offset_data + member.size // 2)
    return root


@pytest.mark.parametrize("kind", list(CASES))
def test_pretrain_and_evaluate_say_what_they_skipped(tmp_path, capsys, kind):
    model, skipped, reasons = CASES[kind]
    root, out = write_bad_shards(tmp_path / "shards", kind), tmp_path / "run"
    logging.disable(logging.CRITICAL)  # the lines must not depend on the logging setup
    try:
        code = main(["pretrain", f"data.root={root}", f"model.name={model}", f"out_dir={out}", *RUN])
    finally:
        logging.disable(logging.NOTSET)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("trained 4 steps")
    epochs = [line for line in captured.err.splitlines() if line.startswith("epoch ")]
    assert epochs[0] == f"epoch 0: {skipped}", captured.err
    assert len(epochs) == 2 and epochs[1].startswith("epoch 1 (so far): skipped "), captured.err

    metrics = out / "test.json"
    assert main(["evaluate", "--model", str(out / "model"), "--task", "pretraining", "--data", str(root),
                 "--split", "train", "--out", str(metrics)]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"evaluation of split train: {skipped}"]
    written = json.loads(metrics.read_text())
    assert json.loads(captured.out) == written and 0.0 <= written["mlm_acc"] <= 1.0
    assert written["data"] == {"samples": 11, "skipped_samples": int(skipped.split()[1]),
                               "skipped_reasons": reasons, "truncated_texts": 0}


def test_evaluate_says_when_nothing_was_skipped(tmp_path, capsys):
    root = tmp_path / "shards"
    write_shards(root, [[good_sample(i) for i in range(6)]])
    out = tmp_path / "run"
    assert main(["pretrain", f"data.root={root}", "model.name=tiny", f"out_dir={out}", *RUN]) == 0
    assert "skipped" not in capsys.readouterr().err  # a clean epoch is logged at INFO only
    assert main(["evaluate", "--model", str(out / "model"), "--task", "pretraining", "--data", str(root),
                 "--split", "train"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["evaluation of split train: skipped 0 of 6 samples"]
    assert json.loads(captured.out)["data"] == {"samples": 6, "skipped_samples": 0, "skipped_reasons": {},
                                                "truncated_texts": 0}
