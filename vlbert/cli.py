"""The ``vlbert`` command line: one subcommand per entry of :data:`COMMANDS`.

Adding a subcommand is one entry: a :class:`Command` with a help line, a function that adds its
arguments to an ``argparse`` parser, and a function that runs it and returns the exit status.
Bad user input (a data error, a bad config key or value, a missing or unwritable path, an optional
dependency not installed) ends with one line on stderr and exit status 2; ``vlbert --debug ...``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Sequence

from vlbert._extras import MissingExtra
from vlbert.commands import demo, evaluate, extract_features, make_shards, predict, quickstart, train
from vlbert.data.shards.schema import DataError
from vlbert.engine import distributed

# Under torchrun these run in every process, sharing the work; the others run on rank 0 only.
DISTRIBUTED_COMMANDS = ("pretrain", "finetune")


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {
    "make-shards": Command(make_shards.HELP, make_shards.add_arguments, make_shards.run),
    "extract-features": Command(extract_features.HELP, extract_features.add_arguments, extract_features.run),
    "pretrain": Command(train.PRETRAIN_HELP, train.add_pretrain_arguments, train.run_pretrain),
    "finetune": Command(train.FINETUNE_HELP, train.add_finetune_arguments, train.run_finetune),
    "evaluate": Command(evaluate.HELP, evaluate.add_arguments, evaluate.run),
    "predict": Command(predict.HELP, predict.add_arguments, predict.run),
    "quickstart": Command(quickstart.HELP, quickstart.add_arguments, quickstart.run),
    "demo": Command(demo.HELP, demo.add_arguments, demo.run),
}


def version() -> str:
    """The installed package's version (its metadata), or "unknown" when vlbert runs uninstalled."""
    try:
        return metadata.version("vlbert")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlbert", description="ViLBERT-family vision-language models.")
    parser.add_argument("--version", action="version", version=f"vlbert {version()}",
                        help="print the installed version and exit")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")  # key=value, e.g. train.max_steps=100


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse a command line. `key=value` overrides may stand anywhere after the command, also
    after options (`finetune vqa --config F train.max_steps=10`), where argparse alone would
    stop collecting them."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all(OVERRIDE.match(word) for word in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if distributed.launched() and args.command not in DISTRIBUTED_COMMANDS and _env_rank() != 0:
        return 0
    try:
        return args.run(args)
    except (DataError, OSError, ValueError, KeyError, MissingExtra) as error:  # ConfigError is a ValueError
        if args.debug:
            raise
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"vlbert {args.command}: error: {message}", file=sys.stderr)
        return 2
    finally:
        distributed.cleanup()


def _env_rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))


if __name__ == "__main__":
    sys.exit(main())
