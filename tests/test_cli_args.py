"""The command line: key=value overrides are taken before and after options."""

import pytest

from vlbert.cli import parse_args


def test_overrides_after_the_config_option():
    args = parse_args(["finetune", "vqa", "--config", "configs/vqa_vqav2.yaml", "train.max_steps=3", "out_dir=runs/x"])
    assert (args.task, args.config, args.overrides) == ("vqa", "configs/vqa_vqav2.yaml", ["train.max_steps=3", "out_dir=runs/x"])


def test_overrides_on_both_sides_keep_their_order():
    args = parse_args(["pretrain", "data.root=d", "--no-resume", "--config", "c.yaml", "train.max_steps=2"])
    assert args.overrides == ["data.root=d", "train.max_steps=2"] and args.no_resume and args.config == "c.yaml"


@pytest.mark.parametrize("argv", [
    ["finetune", "vqa", "--config", "c.yaml", "--bogus"],  # an unknown option stays an error
    ["finetune", "vqa", "--config", "c.yaml", "notakeyvalue"],
    ["make-shards", "sort-of-clevr", "--out", "d", "train.max_steps=2"],  # make-shards takes no overrides
])
def test_other_extra_words_are_errors(argv, capsys):
    with pytest.raises(SystemExit) as raised:
        parse_args(argv)
    assert raised.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
