"""The command line: key=value overrides are taken before and after options; every option says
what it does; `vlbert --version`."""

import argparse
from importlib import metadata

import pytest

from vlbert.cli import COMMANDS, build_parser, parse_args


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


def _options_without_help(parser: argparse.ArgumentParser, path: str):
    """(command, option) for every argument of `parser` and of its subcommands, at any depth, whose
    help is empty."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options_without_help(sub, f"{path} {name}")
        elif not (action.help or "").strip():
            yield path, "/".join(action.option_strings) or action.dest


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(COMMANDS) <= set(commands)  # every registered command is walked
    assert list(_options_without_help(parser, "vlbert")) == []


def test_the_walk_finds_an_option_without_help():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers().add_parser("x")
    sub.add_argument("--top", type=int, default=5)
    assert list(_options_without_help(parser, "p")) == [("p x", "--top")]


def test_version_is_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as raised:
        parse_args(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.strip() == f"vlbert {metadata.version('vlbert')}"
